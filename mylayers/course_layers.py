"""A layer written to the course's template (model/layer.py), unchanged: plain NumPy attributes under
names of its own, weights drawn from np.random, biases shaped (out, 1). lablib.adapter trains it."""

import numpy as np


class _Layer:
    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *output_grad):
        raise NotImplementedError


class FullyConnected(_Layer):
    def __init__(self, in_features, out_features):
        self.weights = np.random.randn(in_features, out_features) * np.sqrt(1.0 / in_features)  # noqa: NPY002 - as the template draws them
        self.biases = np.zeros((out_features, 1))
        self.d_weights = np.zeros_like(self.weights)
        self.d_biases = np.zeros_like(self.biases)

    def forward(self, input):
        self.input = input
        return input @ self.weights + self.biases.T

    def backward(self, output_grad):
        self.d_weights = self.input.T @ output_grad
        self.d_biases = output_grad.sum(axis=0)[:, None]
        return output_grad @ self.weights.T
