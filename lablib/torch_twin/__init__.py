"""PyTorch twins of the NumPy core's pieces that ``torch.nn`` lacks (center loss)."""

from lablib.torch_twin.center_loss import CenterLoss

__all__ = ["CenterLoss"]
