"""The random streams: one per purpose, named in lablib/rng.py, and every seeded draw of the project taken from them."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib.data.split import make_split
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.params import parse_params
from lablib.rng import MAX_SEED, Stream, generator, tsne_seed
from lablib.train.checkpoint import unprefixed
from lablib.train.numpy_backend import initial_state

REPO = Path(__file__).resolve().parents[1]
SEEDERS = {"default_rng", "SeedSequence", "RandomState", "seed", "manual_seed"}


def first_draws(seed: int, stream: Stream, index: int = 0) -> list[int]:
    return generator(seed, stream, index).integers(2**62, size=4).tolist()


def test_every_purpose_draws_its_own_numbers():
    draws = [tuple(first_draws(seed, stream, index)) for seed in (0, 1) for stream in Stream for index in (0, 1)]
    assert len(set(draws)) == len(draws)


def test_a_stream_is_a_pure_function_of_seed_purpose_and_run():
    assert first_draws(7, Stream.TRAINING, 2) == first_draws(7, Stream.TRAINING, 2)
    assert tsne_seed(3) == tsne_seed(3) != tsne_seed(4)
    with pytest.raises(ValueError, match="seed must be in"):
        generator(MAX_SEED + 1, Stream.HOLDOUT)


def test_folds_and_the_first_training_run_no_longer_share_a_stream():
    # NumPy pads a seed sequence with zeros: [seed, 2] was the stream of [seed, 2, 0], so the fold draw and
    # run 0's batch order once drew the same numbers; likewise the subset and the initial weights shared [seed, 1].
    assert np.random.default_rng([5, 2]).integers(2**62) == np.random.default_rng([5, 2, 0]).integers(2**62)
    assert first_draws(5, Stream.FOLDS) != first_draws(5, Stream.TRAINING, 0)
    assert first_draws(5, Stream.SUBSET) != first_draws(5, Stream.INITIAL_WEIGHTS)


def test_the_split_draws_each_part_from_its_stream():
    labels = np.arange(60) % 10
    split = make_split(labels, val_per_class=2, subset=20, kfold=2, seed=4)
    holdout = generator(4, Stream.HOLDOUT)
    val = np.sort(np.concatenate([holdout.permutation(np.flatnonzero(labels == c))[:2] for c in range(10)]))
    np.testing.assert_array_equal(split["val"], val)
    train = np.setdiff1d(np.arange(60), val)
    subset = generator(4, Stream.SUBSET)
    chosen = [train[subset.permutation(np.flatnonzero(labels[train] == c))[:2]] for c in range(10)]
    np.testing.assert_array_equal(split["train"], np.sort(np.concatenate(chosen)))


@pytest.mark.parametrize("init", ["pytorch", "normal_fan_in"])
def test_initial_weights_come_from_their_stream(init):
    raw = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    raw.update(seed=11, model="lab2023_cnn", width=4, init=init)
    raw["center_loss"]["weight"] = 0.0
    params = parse_params(raw).train
    rng = generator(11, Stream.INITIAL_WEIGHTS)
    expected = build_numpy(get_spec("lab2023_cnn", 4), rng=rng, init=init).state_dict()
    state = unprefixed("model", initial_state(params))
    assert state.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)


def seeded_calls(path: Path) -> list[str]:
    """Generators seeded outside lablib/rng.py: a seeding call given a literal seed or a list of them, or a
    ``random_state=`` that is not ``tsne_seed(...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        literal = [arg for arg in node.args if isinstance(arg, ast.Constant | ast.List | ast.Tuple)]
        if name in SEEDERS and literal:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
        for keyword in node.keywords:
            value = keyword.value
            named = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "tsne_seed"
            if keyword.arg == "random_state" and not named:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_every_seeded_draw_of_the_project_uses_a_named_stream():
    files = [path for folder in ("lablib", "stages") for path in sorted((REPO / folder).rglob("*.py"))]
    found = [call for path in files if path != REPO / "lablib/rng.py" for call in seeded_calls(path)]
    assert not found, "seed these from lablib.rng instead:\n" + "\n".join(found)
