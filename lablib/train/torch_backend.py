"""The PyTorch side of training: the twin model, autograd and ``torch.optim``, on CPU or CUDA."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.models.specs import EVAL_BATCH, get_spec
from lablib.models.torch_model import build_torch, load_numpy_state, torch_to_numpy_state
from lablib.params import ParamsError, TrainParams
from lablib.torch_twin import CenterLoss
from lablib.train.checkpoint import prefixed, unprefixed
from lablib.train.setup import make_optimizer


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when a GPU is present, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: torch.device is cuda but no CUDA GPU is visible; use auto or cpu")
    return torch.device(name)


class TorchBackend:
    framework = "torch"
    lr_scheduler = torch.optim.lr_scheduler

    @staticmethod
    def check(params: TrainParams) -> None:
        """Refuse, before any data is read, a device this machine does not have."""
        resolve_device(params.device)

    @staticmethod
    def machine(params: TrainParams) -> dict[str, Any]:
        """What PyTorch's bits depend on beside the CPU: its version, device and threads."""
        device = resolve_device(params.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        return {"torch_version": torch.__version__, "torch_device": name, "torch_threads": torch.get_num_threads()}

    def __init__(self, params: TrainParams, state: Mapping[str, np.ndarray]) -> None:
        self.params = params
        self.device = resolve_device(params.device)
        if self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        self.model = build_torch(get_spec(params.model, params.width))
        load_numpy_state(self.model, unprefixed("model", state))
        self.model.to(self.device)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)
        self.center: CenterLoss | None = None
        if params.center_loss_weight > 0:
            centers = unprefixed("center", state)["centers"]
            self.center = CenterLoss(NUM_CLASSES, centers.shape[1], alpha=params.center_loss_alpha)
            self.center.centers.copy_(torch.from_numpy(centers))
            self.center.to(self.device)
        self.optimizer = make_optimizer(torch.optim, self.model.parameters(), params)
        self.ema: nn.Module | None = None
        if params.ema > 0:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
        """One step on a batch: (cross-entropy, center loss, correct predictions)."""
        self.model.train()
        xb, yb = self._tensor(x), self._tensor(y)
        self.optimizer.zero_grad()
        embedding = self.model.features(xb)
        logits = self.model.classifier(embedding)
        loss = self.criterion(logits, yb)
        total = loss
        center_loss = torch.zeros(())
        if self.center is not None:
            center_loss = self.center(embedding, yb)
            total = loss + self.params.center_loss_weight * center_loss
        total.backward()
        if self.center is not None:
            self.center.update_centers(embedding.detach(), yb)
        self.optimizer.step()
        if self.ema is not None:
            update_average(self.ema.state_dict(), self.model.state_dict(), self.params.ema)
        correct = int((logits.argmax(1) == yb).sum())
        return loss.item(), center_loss.item(), correct

    @torch.no_grad()
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy in eval mode (running BatchNorm statistics), of the
        averaged weights when ``ema`` is on."""
        model = self.model if self.ema is None else self.ema
        model.eval()
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), EVAL_BATCH):
            xb, yb = self._tensor(x[start : start + EVAL_BATCH]), self._tensor(y[start : start + EVAL_BATCH])
            logits = model(xb)
            loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
        return loss_sum / len(y), correct / len(y)

    def model_state(self) -> dict[str, np.ndarray]:
        """The weights to keep: the averaged ones when ``ema`` is on."""
        return torch_to_numpy_state(self.model if self.ema is None else self.ema)

    def state_dict(self) -> dict[str, np.ndarray]:
        state = prefixed("model", torch_to_numpy_state(self.model))
        state.update(prefixed("optimizer", _flatten_optimizer(self.optimizer.state_dict())))
        if self.center is not None:
            state["center/centers"] = self.center.centers.cpu().numpy().copy()
        if self.ema is not None:
            state.update(prefixed("ema", torch_to_numpy_state(self.ema)))
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        load_numpy_state(self.model, unprefixed("model", state))
        self.optimizer.load_state_dict(_unflatten_optimizer(unprefixed("optimizer", state)))
        if self.center is not None:
            self.center.centers.copy_(torch.from_numpy(state["center/centers"]))
        if self.ema is not None:
            load_numpy_state(self.ema, unprefixed("ema", state))


@torch.no_grad()
def update_average(average: Mapping[str, torch.Tensor], live: Mapping[str, torch.Tensor], decay: float) -> None:
    """``numpy_backend.update_average`` in PyTorch, operation for operation: ``a += (w - a) * (1 - decay)``
    on every floating-point entry (BatchNorm's running statistics included), counters copied."""
    for name, a in average.items():
        if a.is_floating_point():
            a += (live[name] - a) * (1 - decay)
        else:
            a.copy_(live[name])


def _flatten_optimizer(state: dict) -> dict[str, np.ndarray]:
    """``torch.optim`` state as flat NumPy arrays (tensors) plus JSON (hyper-parameters)."""
    flat = {"param_groups": np.array(json.dumps(state["param_groups"]))}
    for index, per_param in state["state"].items():
        for name, value in per_param.items():
            flat[f"state.{index}.{name}"] = value.cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
    return flat


def _unflatten_optimizer(flat: Mapping[str, np.ndarray]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
    return {"state": state, "param_groups": json.loads(str(flat["param_groups"][()]))}
