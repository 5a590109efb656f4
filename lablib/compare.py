"""Cross-evaluation: each trained weight file run by both frameworks on the test images.

The NumPy core and its PyTorch twin are two implementations of one network: on the same weights they
must predict the same class for (almost) every image, whichever framework trained the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lablib.errors import LabError
from lablib.evaluate import load_state, run_model
from lablib.models import numpy_inference, torch_model
from lablib.models.specs import Spec
from lablib.params import FRAMEWORKS

MIN_AGREEMENT = 0.999


PREDICT = {"numpy": numpy_inference.predict, "torch": torch_model.predict}


class AgreementError(LabError):
    """The NumPy and PyTorch models disagree on the same weights."""


def cross_evaluate(spec: Spec, model: str, models: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Run each framework's trained weights (``models/FRAMEWORK.npz``) in both frameworks on ``images``
    and return :func:`cross_metrics`; raises :class:`AgreementError` when the two drift apart."""
    logits = {}
    for weights in FRAMEWORKS:
        path = models / f"{weights}.npz"
        state = load_state(path)
        logits[weights] = {
            framework: run_model(predict, spec, state, images, path, model)[1] for framework, predict in PREDICT.items()
        }
    cross = cross_metrics(logits, labels)
    check_agreement(cross)
    return cross


def cross_metrics(logits: Mapping[str, Mapping[str, np.ndarray]], labels: np.ndarray) -> dict[str, Any]:
    """The metrics file of the cross-evaluation, from ``logits[weights][framework]``: the logits of
    each framework on each weight file (keyed by the framework that trained it).

    Per weight file: each framework's accuracy, the share of images on which the two predict the same
    class, and the largest logit difference; then the smallest agreement, and how often the two trained
    models (each in its own framework) agree.
    """
    cross: dict[str, Any] = {}
    for weights, by_framework in logits.items():
        predictions = {framework: z.argmax(axis=1) for framework, z in by_framework.items()}
        cross[f"{weights}_weights"] = {
            "numpy_acc": float((predictions["numpy"] == labels).mean()),
            "torch_acc": float((predictions["torch"] == labels).mean()),
            "agreement": float((predictions["numpy"] == predictions["torch"]).mean()),
            "max_abs_logit_diff": float(np.abs(by_framework["numpy"] - by_framework["torch"]).max()),
        }
    cross["min_agreement"] = min(entry["agreement"] for entry in cross.values())
    own = [logits[framework][framework].argmax(axis=1) for framework in FRAMEWORKS]
    cross["trained_models_agreement"] = float((own[0] == own[1]).mean())
    return cross


def check_agreement(cross: Mapping[str, Any], minimum: float = MIN_AGREEMENT) -> None:
    """Raise :class:`AgreementError` if the frameworks agree on fewer than ``minimum`` of the images."""
    if cross["min_agreement"] < minimum:
        detail = "; ".join(
            f"{key}: {100 * entry['agreement']:.3f} % agreement, "
            f"largest logit difference {entry['max_abs_logit_diff']:.3g}"
            for key, entry in cross.items()
            if isinstance(entry, Mapping)
        )
        raise AgreementError(
            f"the NumPy and PyTorch models disagree on the same weights ({detail}); at least "
            f"{100 * minimum:g} % is required: the NumPy core and its PyTorch twin have drifted apart."
        )
