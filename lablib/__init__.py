"""lablib: a from-scratch NumPy CNN, its PyTorch twin, and the Fashion-MNIST pipeline around them."""
