# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""A hand-in in the style of the widely copied from-scratch tutorial (report 001's lineage).

Batch 1: an image is (H, W), activations are (H, W, C); backprop(d_L_d_out, learn_rate) updates the
weights inside backward. Written for these tests.
"""

import numpy as np


class Conv3x3:
    """num_filters 3x3 filters over a one-channel image, no padding, stride 1."""

    def __init__(self, num_filters):
        self.num_filters = num_filters
        self.filters = np.random.randn(num_filters, 3, 3) / 9

    def iterate_regions(self, image):
        h, w = image.shape
        for i in range(h - 2):
            for j in range(w - 2):
                yield image[i : i + 3, j : j + 3], i, j

    def forward(self, input):
        self.last_input = input
        h, w = input.shape
        output = np.zeros((h - 2, w - 2, self.num_filters))
        for region, i, j in self.iterate_regions(input):
            output[i, j] = np.sum(region * self.filters, axis=(1, 2))
        return output

    def backprop(self, d_L_d_out, learn_rate):
        d_L_d_filters = np.zeros(self.filters.shape)
        for region, i, j in self.iterate_regions(self.last_input):
            for f in range(self.num_filters):
                d_L_d_filters[f] += d_L_d_out[i, j, f] * region
        self.filters -= learn_rate * d_L_d_filters
        return None


class MaxPool2:
    """2x2 max pooling over (H, W, C)."""

    def forward(self, input):
        self.last_input = input
        h, w, c = input.shape
        return input[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))

    def backprop(self, d_L_d_out):
        h, w, c = self.last_input.shape
        d_L_d_input = np.zeros(self.last_input.shape)
        for i in range(h // 2):
            for j in range(w // 2):
                region = self.last_input[i * 2 : i * 2 + 2, j * 2 : j * 2 + 2]
                amax = region.reshape(4, c).argmax(axis=0)
                for f in range(c):
                    d_L_d_input[i * 2 + amax[f] // 2, j * 2 + amax[f] % 2, f] = d_L_d_out[i, j, f]
        return d_L_d_input


class Dense:
    """Fully connected over a flattened activation: totals = input @ weights + biases, weights (in, out)."""

    def __init__(self, input_len, nodes):
        self.weights = np.random.randn(input_len, nodes) / input_len
        self.biases = np.zeros(nodes)

    def forward(self, input):
        self.last_input_shape = input.shape
        self.last_input = input.flatten()
        return self.last_input @ self.weights + self.biases

    def backprop(self, d_L_d_out, learn_rate):
        d_L_d_w = self.last_input[:, None] @ d_L_d_out[None]
        d_L_d_inputs = self.weights @ d_L_d_out
        self.weights -= learn_rate * d_L_d_w
        self.biases -= learn_rate * d_L_d_out
        return d_L_d_inputs.reshape(self.last_input_shape)
