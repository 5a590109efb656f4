# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""A hand-in written to the course template (model/layer.py), shaped as report 001's network.

Batch-first NCHW, weights (out, in, k, k) for the convolution and (in, out) for the fully connected
layer, biases (out, 1); the loss takes class indices and returns probabilities.
"""

import numpy as np


class _Layer:
    def __init__(self):
        pass

    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *output_grad):
        raise NotImplementedError


class Conv2d(_Layer):
    """Valid convolution with stride 1, summed over the kernel's offsets."""

    def __init__(self, in_channels, out_channels, kernel_size):
        self.k = kernel_size
        self.weights = np.random.randn(out_channels, in_channels, kernel_size, kernel_size)
        self.biases = np.zeros((out_channels, 1))

    def forward(self, input):
        self.input = input
        n, _, h, w = input.shape
        self.oh, self.ow = h - self.k + 1, w - self.k + 1
        out = np.zeros((n, self.weights.shape[0], self.oh, self.ow))
        for a in range(self.k):
            for b in range(self.k):
                patch = input[:, :, a : a + self.oh, b : b + self.ow]
                out += np.einsum("nchw,oc->nohw", patch, self.weights[:, :, a, b])
        return out + self.biases.reshape(1, -1, 1, 1)

    def backward(self, output_grad):
        d_input = np.zeros_like(self.input)
        self.d_weights = np.zeros_like(self.weights)
        for a in range(self.k):
            for b in range(self.k):
                patch = self.input[:, :, a : a + self.oh, b : b + self.ow]
                self.d_weights[:, :, a, b] = np.einsum("nohw,nchw->oc", output_grad, patch)
                d_input[:, :, a : a + self.oh, b : b + self.ow] += np.einsum(
                    "nohw,oc->nchw", output_grad, self.weights[:, :, a, b]
                )
        self.d_biases = output_grad.sum(axis=(0, 2, 3)).reshape(-1, 1)
        return d_input


class MaxPool2d(_Layer):
    """Non-overlapping max pooling; an odd last row or column is dropped."""

    def __init__(self, kernel_size):
        self.k = kernel_size

    def forward(self, input):
        k = self.k
        n, c, h, w = input.shape
        self.shape = input.shape
        blocks = input[:, :, : h // k * k, : w // k * k].reshape(n, c, h // k, k, w // k, k)
        out = blocks.max(axis=(3, 5))
        self.mask = blocks == out[:, :, :, None, :, None]
        return out

    def backward(self, output_grad):
        k = self.k
        n, c, h, w = self.shape
        d_blocks = self.mask * output_grad[:, :, :, None, :, None]
        d_input = np.zeros(self.shape)
        d_input[:, :, : h // k * k, : w // k * k] = d_blocks.reshape(n, c, h // k * k, w // k * k)
        return d_input


class Flatten(_Layer):
    def forward(self, input):
        self.shape = input.shape
        return input.reshape(len(input), -1)

    def backward(self, output_grad):
        return output_grad.reshape(self.shape)


class FullyConnected(_Layer):
    """y = x @ weights + biases.T, with weights kept as (in, out)."""

    def __init__(self, in_features, out_features):
        self.weights = np.random.randn(in_features, out_features)
        self.biases = np.zeros((out_features, 1))

    def forward(self, input):
        self.input = input
        return input @ self.weights + self.biases.T

    def backward(self, output_grad):
        self.d_weights = self.input.T @ output_grad
        self.d_biases = output_grad.sum(axis=0).reshape(-1, 1)
        return output_grad @ self.weights.T


class SoftmaxWithloss(_Layer):
    """forward(input, target) -> (predict, loss) with class indices as targets; backward() -> input gradient."""

    def forward(self, input, target):
        exp = np.exp(input - input.max(axis=1, keepdims=True))
        self.predict = exp / exp.sum(axis=1, keepdims=True)
        self.target = target
        loss = -np.mean(np.log(self.predict[np.arange(len(target)), target]))
        return self.predict, loss

    def backward(self):
        grad = self.predict.copy()
        grad[np.arange(len(self.target)), self.target] -= 1
        return grad / len(self.target)
