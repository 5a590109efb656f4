# ruff: noqa: NPY002 - students draw with np.random.randn, and these files are written as students write
"""A network of one's own design: layers in a list, softmax cross-entropy plus a center loss on the features.

The center loss keeps its centres' update rule (Wen et al., 2016) in ``d_centers``: a step, not the
loss's gradient. Integer class targets. Written for these tests.
"""

import numpy as np


class Dense:
    def __init__(self, n_in, n_out):
        self.W = np.random.randn(n_in, n_out)
        self.b = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, g):
        self.dW = self.x.T @ g
        self.db = g.sum(axis=0)
        return g @ self.W.T


class Tanh:
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return g * (1 - self.y**2)


class CenterLoss:
    def __init__(self, classes, features, alpha=0.5):
        self.centers = np.random.randn(classes, features)
        self.alpha = alpha

    def forward(self, features, target):
        self.diff = features - self.centers[target]
        self.target = target
        return 0.5 * np.sum(self.diff**2) / len(features)

    def backward(self):
        counts = np.bincount(self.target, minlength=len(self.centers))[:, None]
        sums = np.zeros_like(self.centers)
        np.add.at(sums, self.target, -self.diff)
        self.d_centers = self.alpha * sums / (1 + counts)
        return self.diff / len(self.diff)


class Network:
    def __init__(self):
        self.layers = [Dense(784, 8), Tanh()]
        self.head = Dense(8, 10)
        self.center = CenterLoss(10, 8)

    def forward(self, input, target):
        x = input
        for layer in self.layers:
            x = layer.forward(x)
        self.features = x
        logits = self.head.forward(x)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        self.p = shifted / shifted.sum(axis=1, keepdims=True)
        self.target = target
        loss = -np.log(self.p[np.arange(len(target)), target]).mean()
        return self.p, loss + 0.1 * self.center.forward(x, target)

    def backward(self):
        g = self.p.copy()
        g[np.arange(len(self.target)), self.target] -= 1
        g = self.head.backward(g / len(self.target)) + 0.1 * self.center.backward()
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g
