# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""Hand-ins in other layouts: (N, H, W, C) with (K, K, C_in, C_out) kernels in dicts, batch-last (C, H, W, N),
features-first (in, N) computed in float32. Constructor arguments in orders of their own. Written for these tests."""

import numpy as np


class Convolution:
    """NHWC convolution: Convolution(oc_size, ic_size, kernel_size, stride, padding)."""

    def __init__(self, oc_size, ic_size, kernel_size, stride=1, padding=0):
        self.params = {
            "kernel": np.random.randn(kernel_size, kernel_size, ic_size, oc_size),
            "bias": np.zeros(oc_size),
        }
        self.grads = {}
        self.k, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        k, s, p = self.k, self.stride, self.padding
        self.xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        n, h, w, _ = self.xp.shape
        self.oh, self.ow = (h - k) // s + 1, (w - k) // s + 1
        kernel = self.params["kernel"]
        out = np.empty((n, self.oh, self.ow, kernel.shape[3]))
        for i in range(self.oh):
            for j in range(self.ow):
                patch = self.xp[:, i * s : i * s + k, j * s : j * s + k, :]
                out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
        return out + self.params["bias"]

    def backward(self, dout):
        k, s, p = self.k, self.stride, self.padding
        kernel = self.params["kernel"]
        dxp = np.zeros_like(self.xp)
        dk = np.zeros_like(kernel)
        for i in range(self.oh):
            for j in range(self.ow):
                patch = self.xp[:, i * s : i * s + k, j * s : j * s + k, :]
                dk += np.tensordot(patch, dout[:, i, j, :], axes=(0, 0))
                dxp[:, i * s : i * s + k, j * s : j * s + k, :] += np.tensordot(dout[:, i, j, :], kernel, axes=(1, 3))
        self.grads["kernel"] = dk
        self.grads["bias"] = dout.sum(axis=(0, 1, 2))
        h, w = dxp.shape[1:3]
        return dxp[:, p : h - p, p : w - p, :]


class BatchLastConv:
    """Batch-last (C, H, W, N) convolution without padding: W (out, in, k, k), b (out, 1, 1, 1), W/dW and b/db."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        self.W = np.random.randn(out_channels, in_channels, kernel_size, kernel_size)
        self.b = np.zeros((out_channels, 1, 1, 1))
        self.k, self.s = kernel_size, stride

    def forward(self, x):
        self.x = x
        k, s = self.k, self.s
        _, h, w, n = x.shape
        self.oh, self.ow = (h - k) // s + 1, (w - k) // s + 1
        out = np.zeros((self.W.shape[0], self.oh, self.ow, n))
        for i in range(self.oh):
            for j in range(self.ow):
                out[:, i, j, :] = np.tensordot(self.W, x[:, i * s : i * s + k, j * s : j * s + k, :], axes=3)
        return out + self.b

    def backward(self, dout):
        k, s = self.k, self.s
        dx = np.zeros_like(self.x)
        self.dW = np.zeros_like(self.W)
        for i in range(self.oh):
            for j in range(self.ow):
                region = self.x[:, i * s : i * s + k, j * s : j * s + k, :]
                self.dW += np.tensordot(dout[:, i, j, :], region, axes=([1], [3]))
                dx[:, i * s : i * s + k, j * s : j * s + k, :] += np.tensordot(self.W, dout[:, i, j, :], axes=(0, 0))
        self.db = dout.sum(axis=(1, 2, 3)).reshape(self.b.shape)
        return dx


class LinearFeaturesFirst:
    """y = w x + b on features-first (in, N) arrays, computed in float32 whatever it is given."""

    def __init__(self, n_in, n_out):
        self.w = (np.random.randn(n_out, n_in) / np.sqrt(n_in)).astype(np.float32)
        self.b = np.zeros((n_out, 1), np.float32)

    def forward(self, x):
        self.x = x.astype(np.float32)
        return self.w @ self.x + self.b

    def backward(self, dy):
        dy = dy.astype(np.float32)
        self.grad_w = dy @ self.x.T
        self.grad_b = dy.sum(axis=1, keepdims=True)
        return self.w.T @ dy
