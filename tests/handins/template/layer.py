# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""A hand-in written to the course template (model/layer.py): float64 weights, (out, 1) biases, NCHW."""

import numpy as np


class _Layer:
    def __init__(self):
        pass

    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *output_grad):
        raise NotImplementedError


class FullyConnected(_Layer):
    """y = x @ weights + biases.T, with weights kept as (in, out)."""

    def __init__(self, in_features, out_features):
        self.weights = np.random.randn(in_features, out_features) * 0.01
        self.biases = np.zeros((out_features, 1))

    def forward(self, input):
        self.input = input
        return input @ self.weights + self.biases.T

    def backward(self, output_grad):
        self.d_weights = self.input.T @ output_grad
        self.d_biases = np.sum(output_grad, axis=0, keepdims=True).T
        return output_grad @ self.weights.T


class Conv2d(_Layer):
    """Convolution by loops over the output positions, weights (out, in, k, k), biases (out, 1)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.k, self.stride, self.padding = kernel_size, stride, padding
        self.weights = np.random.randn(out_channels, in_channels, kernel_size, kernel_size)
        self.biases = np.zeros((out_channels, 1))
        self.d_weights = np.zeros_like(self.weights)
        self.d_biases = np.zeros_like(self.biases)

    def forward(self, input):
        k, s, p = self.k, self.stride, self.padding
        self.xp = np.pad(input, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, h, w = self.xp.shape
        self.oh, self.ow = (h - k) // s + 1, (w - k) // s + 1
        out = np.zeros((n, self.weights.shape[0], self.oh, self.ow))
        for i in range(self.oh):
            for j in range(self.ow):
                region = self.xp[:, :, i * s : i * s + k, j * s : j * s + k]
                out[:, :, i, j] = np.tensordot(region, self.weights, axes=([1, 2, 3], [1, 2, 3]))
        return out + self.biases.reshape(1, -1, 1, 1)

    def backward(self, output_grad):
        k, s, p = self.k, self.stride, self.padding
        dxp = np.zeros_like(self.xp)
        self.d_weights = np.zeros_like(self.weights)
        for i in range(self.oh):
            for j in range(self.ow):
                region = self.xp[:, :, i * s : i * s + k, j * s : j * s + k]
                self.d_weights += np.tensordot(output_grad[:, :, i, j], region, axes=(0, 0))
                dxp[:, :, i * s : i * s + k, j * s : j * s + k] += np.tensordot(
                    output_grad[:, :, i, j], self.weights, axes=1
                )
        self.d_biases = output_grad.sum(axis=(0, 2, 3)).reshape(-1, 1)
        h, w = dxp.shape[2:]
        return dxp[:, :, p : h - p, p : w - p]


class BatchNorm2d(_Layer):
    """Batch normalisation over (N, H, W); the running variance is kept biased, momentum as 0.9 * old."""

    def __init__(self, num_features, momentum=0.9, eps=1e-5):
        self.gamma = np.ones((1, num_features, 1, 1))
        self.beta = np.zeros((1, num_features, 1, 1))
        self.running_mean = np.zeros((1, num_features, 1, 1))
        self.running_var = np.ones((1, num_features, 1, 1))
        self.momentum, self.eps = momentum, eps

    def forward(self, input, training=True):
        if training:
            mean = input.mean(axis=(0, 2, 3), keepdims=True)
            var = input.var(axis=(0, 2, 3), keepdims=True)
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mean
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            mean, var = self.running_mean, self.running_var
        self.std = np.sqrt(var + self.eps)
        self.x_hat = (input - mean) / self.std
        return self.gamma * self.x_hat + self.beta

    def backward(self, output_grad):
        m = output_grad.shape[0] * output_grad.shape[2] * output_grad.shape[3]
        self.d_gamma = np.sum(output_grad * self.x_hat, axis=(0, 2, 3), keepdims=True)
        self.d_beta = np.sum(output_grad, axis=(0, 2, 3), keepdims=True)
        d_x_hat = output_grad * self.gamma
        return (
            m * d_x_hat
            - np.sum(d_x_hat, axis=(0, 2, 3), keepdims=True)
            - self.x_hat * np.sum(d_x_hat * self.x_hat, axis=(0, 2, 3), keepdims=True)
        ) / (m * self.std)


class ReLU(_Layer):
    def forward(self, input):
        self.mask = input > 0
        return input * self.mask

    def backward(self, output_grad):
        return output_grad * self.mask


class Flatten(_Layer):
    def forward(self, input):
        self.shape = input.shape
        return input.reshape(len(input), -1)

    def backward(self, output_grad):
        return output_grad.reshape(self.shape)


class SoftmaxWithloss(_Layer):
    """forward(input, target) -> (predict, loss) with one-hot targets; backward() -> input gradient."""

    def forward(self, input, target):
        shifted = input - input.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        self.predict = exp / exp.sum(axis=1, keepdims=True)
        self.target = target
        loss = -np.sum(target * np.log(self.predict + 1e-12)) / len(input)
        return self.predict, loss

    def backward(self):
        return (self.predict - self.target) / len(self.target)
