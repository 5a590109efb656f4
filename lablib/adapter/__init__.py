"""A layer written to another contract (the course template's), trained unchanged as a ``lablib.nn.Module``.

The course's students keep parameters and gradients as plain NumPy attributes under names of their
own (``weights``/``d_weights``, ``W``/``dW``, ``params['W']``/``grads['W']``) and call their methods
``forward``/``backward`` or ``forward_pass``/``backprop``. A spec names such a layer as
``mylayers/FILE.py:CLASS``; :func:`lablib.adapter.module.adapt` wraps it, unchanged, so that the
optimisers of ``lablib.optim`` train it in place.

This package holds only what training needs, one concern a module:

* :mod:`~lablib.adapter.errors`: :class:`AdapterError` and :func:`call`, the guarded call of a
  student's code;
* :mod:`~lablib.adapter.arrays`: a layer's floating arrays, as attributes or in dict attributes;
* :mod:`~lablib.adapter.tensors`: which arrays are its parameters, their gradients and its running
  statistics, by the conventional names;
* :mod:`~lablib.adapter.methods`: its forward and backward, its training flag, its learning rate;
* :mod:`~lablib.adapter.binding`: which array stands for which of PyTorch's tensors, presented squeezed;
* :mod:`~lablib.adapter.loader`: the class a ``FILE.py:CLASS`` names;
* :mod:`~lablib.adapter.module`: the wrapper, :class:`Adapted`, and :func:`adapt`.

Layouts, bindings to PyTorch's shapes, loss layers and the inspection of methods for the checks live
with the gradient checker, :mod:`lablib.gradcheck`, which builds on these modules. This file imports
nothing: a training that imports one module of the package depends on that module alone.
"""
