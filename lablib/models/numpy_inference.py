"""Inference with the NumPy core: a trained state's features and logits, BatchNorm folded away.

Kept apart from ``numpy_model`` so that training does not import the inference path: a change here
reruns evaluation, not the trainings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lablib import nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import EVAL_BATCH, Spec
from lablib.nn.fusion import fuse_for_inference
from lablib.rng import placeholder


def predict(spec: Spec, state: Mapping[str, np.ndarray], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The features and logits of ``images`` under the weights ``state``, in eval mode with BatchNorm
    folded into the layer before it (``nn.fusion``), ``EVAL_BATCH`` images at a time. Raises KeyError or
    ValueError when ``state`` is not a state dict of ``spec``."""
    model = build_numpy(spec, rng=placeholder())
    model.load_state_dict(state)
    model = fuse_for_inference(model)
    starts = range(0, len(images), EVAL_BATCH)
    with nn.no_grad():
        features = np.concatenate([model.features(np.ascontiguousarray(images[i : i + EVAL_BATCH])) for i in starts])
        logits = np.concatenate([model.classifier(features[i : i + EVAL_BATCH]) for i in starts])
    return features, logits
