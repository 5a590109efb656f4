"""The models of both reports: specs as plain data (``specs.py``), built with the NumPy core
(``numpy_model.py``) or with PyTorch (``torch_model.py``); the layer table in ``summary.py``.

Nothing is imported here, so that reading a spec loads neither framework.
"""
