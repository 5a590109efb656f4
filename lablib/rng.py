"""Every random stream of the project, named in one place.

A stream is NumPy's PCG64 generator seeded by ``[seed, stream, index]``: ``seed`` from params.yaml,
``stream`` the purpose's number in :class:`Stream`, and ``index`` the run (fold) where one purpose
draws once per run, else 0. No two purposes share a number, so no draw of one repeats or shifts the
draws of another, and the same seed gives the same numbers on every machine.

Every seed sequence has exactly three words on purpose: NumPy pads a short one with zeros, so
``[seed, 2]`` is the same stream as ``[seed, 2, 0]``. ``seed`` must fit in one word (params.yaml's
``seed`` is checked against :data:`MAX_SEED`).
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np

MAX_SEED = 2**32 - 1


@unique
class Stream(IntEnum):
    """The purposes that draw random numbers. The numbers are part of every result: never reuse one."""

    HOLDOUT = 0  # the split: which images of each class are held out for validation
    INITIAL_WEIGHTS = 1  # the model's initial weights, then the center loss's initial centres
    TRAINING = 2  # batch order and augmentation of one training run (index: the run, i.e. the fold)
    TEST_SAMPLE = 3  # the stratified test images whose features the t-SNE map shows
    AUGMENT_EXAMPLES = 5  # the report's figure of augmented training images
    SUBSET = 6  # the split: the stratified subset of the training images (data.subset)
    FOLDS = 7  # the split: the fold of each image, for kfold and rotating validation
    TSNE = 8  # the t-SNE map's initialisation noise
    PLACEHOLDER = 9  # weights of a model built only to receive a saved state dict
    GRADCHECK = 10  # python -m lablib.gradcheck: inputs and weights (seed: the input shape's number; index: the draw)


def generator(seed: int, stream: Stream, index: int = 0) -> np.random.Generator:
    """The generator of ``stream`` under ``seed`` (for run ``index`` where the purpose has several)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}; got {seed}")
    return np.random.default_rng([seed, int(stream), index])


def placeholder() -> np.random.Generator:
    """The generator for weights that a loaded state dict overwrites: their values never matter."""
    return generator(0, Stream.PLACEHOLDER)


def tsne_seed(seed: int) -> int:
    """The integer ``random_state`` scikit-learn's t-SNE takes, drawn from the TSNE stream."""
    return int(generator(seed, Stream.TSNE).integers(2**31))
