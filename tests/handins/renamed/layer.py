# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""A hand-in to the course template whose names follow no convention the checker knows by name.

``FullyConnected`` keeps its gradients in ``grad_w``/``grad_b`` beside ``weights``/``biases``;
``BatchNorm1d`` its running statistics in ``run_mean``/``run_var``; ``Affine`` its parameters in
``mat``/``vec`` and their gradients in ``g_mat``/``g_vec``; the loss guards its logarithm with 1e-7.
Written for the tests: each is found by behaviour, and the network passes.
"""

import numpy as np


class FullyConnected:
    def __init__(self, in_features, out_features):
        self.weights = np.random.randn(in_features, out_features) * 0.01
        self.biases = np.zeros((out_features, 1))

    def forward(self, input):
        self.input = input
        return input @ self.weights + self.biases.T

    def backward(self, output_grad):
        self.grad_w = self.input.T @ output_grad
        self.grad_b = np.sum(output_grad, axis=0, keepdims=True).T
        return output_grad @ self.weights.T


class BatchNorm1d:
    def __init__(self, features, momentum=0.9, eps=1e-5):
        self.gamma = np.ones(features)
        self.beta = np.zeros(features)
        self.run_mean = np.zeros(features)
        self.run_var = np.ones(features)
        self.momentum, self.eps = momentum, eps

    def forward(self, input, training=True):
        if training:
            mean, var = input.mean(axis=0), input.var(axis=0)
            self.run_mean = self.momentum * self.run_mean + (1 - self.momentum) * mean
            self.run_var = self.momentum * self.run_var + (1 - self.momentum) * var
        else:
            mean, var = self.run_mean, self.run_var
        self.std = np.sqrt(var + self.eps)
        self.x_hat = (input - mean) / self.std
        return self.gamma * self.x_hat + self.beta

    def backward(self, output_grad):
        m = len(output_grad)
        self.d_gamma = np.sum(output_grad * self.x_hat, axis=0)
        self.d_beta = np.sum(output_grad, axis=0)
        d_x_hat = output_grad * self.gamma
        return (m * d_x_hat - d_x_hat.sum(axis=0) - self.x_hat * np.sum(d_x_hat * self.x_hat, axis=0)) / (m * self.std)


class Affine:
    def __init__(self, in_features, out_features):
        self.mat = np.random.randn(out_features, in_features) * 0.01
        self.vec = np.zeros(out_features)

    def forward(self, input):
        self.input = input
        return input @ self.mat.T + self.vec

    def backward(self, output_grad):
        self.g_mat = output_grad.T @ self.input
        self.g_vec = output_grad.sum(axis=0)
        return output_grad @ self.mat


class ReLU:
    def forward(self, input):
        self.mask = input > 0
        return input * self.mask

    def backward(self, output_grad):
        return output_grad * self.mask


class SoftmaxWithloss:
    def forward(self, input, target):
        exp = np.exp(input - input.max(axis=1, keepdims=True))
        self.predict = exp / exp.sum(axis=1, keepdims=True)
        self.target = target
        return self.predict, -np.sum(target * np.log(self.predict + 1e-7)) / len(input)

    def backward(self):
        return (self.predict - self.target) / len(self.target)
