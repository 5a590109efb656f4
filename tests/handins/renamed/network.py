"""A hand-in to the course template (model/network.py) whose layers name their tensors as they please."""

from layer import Affine, BatchNorm1d, FullyConnected, ReLU, SoftmaxWithloss


class Network:
    def __init__(self):
        self.fc = FullyConnected(28 * 28, 16)
        self.bn = BatchNorm1d(16)
        self.relu = ReLU()
        self.head = Affine(16, 10)
        self.loss = SoftmaxWithloss()

    def forward(self, input, target):
        x = self.relu.forward(self.bn.forward(self.fc.forward(input.reshape(len(input), -1))))
        return self.loss.forward(self.head.forward(x), target)

    def backward(self):
        grad = self.head.backward(self.loss.backward())
        return self.fc.backward(self.bn.backward(self.relu.backward(grad)))
