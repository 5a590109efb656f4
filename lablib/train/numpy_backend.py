"""The NumPy side of training: forward, backward and step written out by hand with ``lablib.nn``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lablib import optim
from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import EVAL_BATCH, get_spec
from lablib.nn import CenterLoss, CrossEntropyLoss, no_grad
from lablib.optim import lr_scheduler
from lablib.params import TrainParams
from lablib.rng import Stream, generator, placeholder
from lablib.train.checkpoint import prefixed, unprefixed
from lablib.train.setup import make_optimizer


def initial_state(params: TrainParams) -> dict[str, np.ndarray]:
    """The starting weights (and class centres) of a run, drawn from ``seed`` by the NumPy core with
    the ``init`` scheme. Both frameworks start from exactly these arrays."""
    rng = generator(params.seed, Stream.INITIAL_WEIGHTS)
    model = build_numpy(get_spec(params.model, params.width), rng=rng, init=params.init)
    state = prefixed("model", model.state_dict())
    if params.center_loss_weight > 0:
        center = CenterLoss(NUM_CLASSES, embedding_size(model), alpha=params.center_loss_alpha, rng=rng)
        state.update(prefixed("center", center.state_dict()))
    return state


def embedding_size(model: Classifier) -> int:
    """Width of the features the center loss acts on (256 for lab2025_cnn)."""
    model.eval()
    with no_grad():
        return int(model.features(np.zeros((1, 1, 28, 28), np.float32)).shape[1])


class NumpyBackend:
    framework = "numpy"
    lr_scheduler = lr_scheduler

    @staticmethod
    def check(params: TrainParams) -> None:
        """Nothing to refuse: the NumPy core runs on any CPU."""

    @staticmethod
    def machine(params: TrainParams) -> dict[str, Any]:
        """Nothing beside ``lablib.machine.describe()``: NumPy's BLAS is the whole of it."""
        return {}

    def __init__(self, params: TrainParams, state: Mapping[str, np.ndarray]) -> None:
        self.params = params
        self.model = build_numpy(get_spec(params.model, params.width), rng=placeholder())
        self.model.load_state_dict(unprefixed("model", state))
        self.criterion = CrossEntropyLoss(label_smoothing=params.label_smoothing)
        self.center: CenterLoss | None = None
        if params.center_loss_weight > 0:
            self.center = CenterLoss(NUM_CLASSES, embedding_size(self.model), alpha=params.center_loss_alpha)
            self.center.load_state_dict(unprefixed("center", state))
        self.optimizer = make_optimizer(optim, list(self.model.parameters()), params)
        self.ema: Classifier | None = None
        if params.ema > 0:
            self.ema = build_numpy(get_spec(params.model, params.width), rng=placeholder())
            self.ema.load_state_dict(unprefixed("model", state))

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
        """One step on a batch: (cross-entropy, center loss, correct predictions)."""
        self.model.train()
        self.optimizer.zero_grad()
        embedding = self.model.features(x)
        logits = self.model.classifier(embedding)
        loss = self.criterion(logits, y)
        grad = self.model.classifier.backward(self.criterion.backward())
        center_loss = 0.0
        if self.center is not None:
            center_loss = self.center(embedding, y)
            grad += self.params.center_loss_weight * self.center.backward()
            self.center.update_centers()
        self.model.features.backward(grad)
        self.optimizer.step()
        if self.ema is not None:
            update_average(self.ema.state_dict(), self.model.state_dict(), self.params.ema)
        return loss, center_loss, int((logits.argmax(1) == y).sum())

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy in eval mode (running BatchNorm statistics), of the
        averaged weights when ``ema`` is on."""
        model = self.model if self.ema is None else self.ema
        model.eval()
        criterion = CrossEntropyLoss()
        loss_sum, correct = 0.0, 0
        with no_grad():
            for start in range(0, len(y), EVAL_BATCH):
                xb, yb = np.ascontiguousarray(x[start : start + EVAL_BATCH]), y[start : start + EVAL_BATCH]
                logits = model(xb)
                loss_sum += criterion(logits, yb) * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
        return loss_sum / len(y), correct / len(y)

    def model_state(self) -> dict[str, np.ndarray]:
        """The weights to keep: the averaged ones when ``ema`` is on."""
        return dict((self.model if self.ema is None else self.ema).state_dict())

    def state_dict(self) -> dict[str, np.ndarray]:
        state = prefixed("model", self.model.state_dict())
        state.update(prefixed("optimizer", self.optimizer.state_dict()))
        if self.center is not None:
            state.update(prefixed("center", self.center.state_dict()))
        if self.ema is not None:
            state.update(prefixed("ema", self.ema.state_dict()))
        return {key: np.array(value, copy=True) for key, value in state.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.model.load_state_dict(unprefixed("model", state))
        self.optimizer.load_state_dict(unprefixed("optimizer", state))
        if self.center is not None:
            self.center.load_state_dict(unprefixed("center", state))
        if self.ema is not None:
            self.ema.load_state_dict(unprefixed("ema", state))


def update_average(average: Mapping[str, np.ndarray], live: Mapping[str, np.ndarray], decay: float) -> None:
    """One step of the exponential moving average, in place: ``a += (w - a) * (1 - decay)``, the
    same as ``a = decay * a + (1 - decay) * w``.

    Every floating-point entry is averaged, BatchNorm's running statistics included: they describe
    the live weights of the last few steps, and averaging them over the same window as the weights
    keeps them matched to the averaged network. Counters (``num_batches_tracked``) are copied.
    """
    for name, a in average.items():
        if np.issubdtype(a.dtype, np.floating):
            a += (live[name] - a) * (1 - decay)
        else:
            a[...] = live[name]
