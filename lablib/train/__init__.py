"""Training: one loop (``loop.py``) over two backends, NumPy (``numpy_backend.py``) and PyTorch
(``torch_backend.py``); ``run.py`` trains one framework's model.

Nothing is imported here, so that reading a checkpoint (``checkpoint.py``) loads no training code.
"""
