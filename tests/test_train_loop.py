"""The shared training loop, on synthetic data: validation plans, and both backends agreeing."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib.params import ParamsError, parse_params
from lablib.train import NumpyBackend, initial_state
from lablib.train.loop import Outputs, Pool, Trainer, check_fits, validation_runs
from lablib.train.torch_backend import TorchBackend

REPO = Path(__file__).resolve().parents[1]


def make_params(**changes):
    raw = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = raw
        for parent in parents:
            node = node[parent]
        node[key] = value
    return parse_params(raw).train


def make_pool(n_per_class: int = 12, k: int = 3, seed: int = 0) -> Pool:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    images = rng.uniform(-0.5, 0.5, (len(labels), 1, 28, 28)).astype(np.float32)
    images[np.arange(len(labels)), 0, labels, labels] = 0.5  # something learnable
    order = rng.permutation(len(labels))
    folds = np.tile(np.arange(k), len(labels) // k + 1)[: len(labels)]
    return Pool(images=images[order], labels=labels[order], n_train=len(labels) * 3 // 4, folds=folds)


def test_holdout_uses_the_fixed_split():
    pool = make_pool()
    [(name, split)] = validation_runs(make_params(validation="holdout"), pool)
    train, val = split(0)
    assert name == "holdout"
    assert train.tolist() == list(range(pool.n_train))
    assert val.tolist() == list(range(pool.n_train, len(pool.labels)))


def test_kfold_trains_one_model_per_fold():
    pool = make_pool()
    runs = validation_runs(make_params(validation="kfold"), pool)
    assert [name for name, _ in runs] == ["fold0", "fold1", "fold2"]
    for fold, (_, split) in enumerate(runs):
        train, val = split(0)
        assert set(pool.folds[val]) == {fold}
        assert fold not in set(pool.folds[train])
        assert len(train) + len(val) == len(pool.labels)


def test_rotating_validates_on_a_different_fold_every_epoch():
    pool = make_pool()
    [(_, split)] = validation_runs(make_params(validation="rotating"), pool)
    seen = [set(pool.folds[split(epoch)[1]]) for epoch in range(6)]
    assert seen == [{0}, {1}, {2}, {0}, {1}, {2}]


def test_batch_larger_than_training_data_is_refused():
    pool = make_pool()
    params = make_params(batch_size=500)
    with pytest.raises(ParamsError, match="batch_size 500 is larger than the training data"):
        check_fits(params, validation_runs(params, pool))


def test_numpy_and_torch_backends_take_the_same_steps(tmp_path):
    """Same batches, same initial weights: after an epoch both frameworks hold the same weights."""
    params = make_params(
        model="lab2023_cnn", width=4, epochs=1, batch_size=20, lr=0.01, **{"schedule.name": "constant"}
    )
    pool = make_pool()
    states = {}
    for framework, backend in (("numpy", NumpyBackend), ("torch", TorchBackend)):
        outputs = Outputs(tmp_path / f"{framework}.npz", tmp_path / framework, tmp_path / f"ck-{framework}.npz")
        Trainer(params, pool, backend, initial_state(params), outputs, framework).run()
        states[framework] = np.load(outputs.model)
    for key in states["numpy"].files:
        np.testing.assert_allclose(states["numpy"][key], states["torch"][key], rtol=1e-3, atol=1e-4, err_msg=key)
