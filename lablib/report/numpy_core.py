"""The section on how the NumPy network is written: layers with a hand-written backward, the convolution
as one matrix product (im2col), and the checks that prove the gradients."""

from __future__ import annotations

from lablib.models.numpy_model import Classifier
from lablib.nn import Conv2d
from lablib.report.markdown import Section


def numpy_core_section(model: Classifier, batch_size: int, compared: bool) -> Section:
    """How the NumPy core computes ``model``, with the shape of its first convolution's im2col matrix for a
    batch of ``batch_size``; ``compared``: the section after it runs both implementations on the same weights."""
    conv = next(layer for layer in model.modules() if isinstance(layer, Conv2d))
    k, channels, filters = conv.kernel_size, conv.weight.data.shape[1], conv.weight.data.shape[0]
    side = (28 + 2 * conv.padding - k) // conv.stride + 1
    return Section(
        "How the NumPy network is written",
        [
            "The NumPy core (`lablib/nn`, `lablib/optim`) imports NumPy only and records no graph. Each layer is "
            "a `Module` whose `forward` keeps what its gradient will need and whose `backward` takes the gradient "
            "of the loss with respect to its output, adds its parameters' gradients and returns the gradient with "
            "respect to its input; `Sequential` calls the backwards in reverse order, and the optimiser's `step` "
            "applies the update, as PyTorch's `loss.backward()` and `optimizer.step()` would.",
            "A convolution is one matrix product (report 000, 5.3 and Appendix A): `im2col` copies the receptive "
            f"field of every output position into a column, so that the first convolution turns a batch of "
            f"{batch_size} images into a ({channels * k * k}, {side * side * batch_size:,}) matrix, a column for "
            f"each of the {side * side} output positions of each image, which its ({filters}, {channels * k * k}) "
            "weights multiply. Its backward is two more products, for the weights "
            "and for the columns, and `col2im` adds each column's gradient back onto the pixels it was read from. "
            "Max pooling takes the maximum over the strided views of its windows' taps, one tap at a time, and "
            "passes each window's gradient to its first maximum; the loss's "
            "gradient with respect to the logits is the softmax minus the (smoothed) one-hot target (report 000, "
            "3.3).",
            "Every layer's gradients, and the whole network's, are tested against PyTorch autograd and against "
            "finite differences (`tests/`); the checker `python -m lablib.gradcheck` applies the same checks to a "
            "layer or network written to the course's template."
            + (" The next section runs both implementations on the same trained weights." if compared else ""),
        ],
    )
