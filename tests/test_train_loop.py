"""The shared training loop, on synthetic data: validation plans, and both backends agreeing."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib.params import ParamsError, parse_params
from lablib.train.loop import NumericalError, Outputs, Pool, Trainer, check_fits, validation_runs
from lablib.train.numpy_backend import NumpyBackend, initial_state
from lablib.train.state import TrainingState
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


def interrupted(backend: type, after_steps: int) -> type:
    """``backend`` that dies (as a kill would) on its ``after_steps + 1``-th training step."""

    class Interrupted(backend):
        steps = 0

        def train_step(self, x, y):
            Interrupted.steps += 1
            if Interrupted.steps > after_steps:
                raise KeyboardInterrupt
            return super().train_step(x, y)

    return Interrupted


def train_to_end(params, pool, backend, outputs: Outputs, framework: str = "numpy") -> dict:
    summary = Trainer(params, pool, backend, initial_state(params), outputs, framework).run()
    return {"summary": summary, "weights": dict(np.load(outputs.model))}


def assert_same_run(a: dict, b: dict) -> None:
    timing = {"mean_epoch_seconds", "images_per_second"}
    assert {k: v for k, v in a["summary"].items() if k not in timing} == {
        k: v for k, v in b["summary"].items() if k not in timing
    }
    assert a["weights"].keys() == b["weights"].keys()
    for key in a["weights"]:
        np.testing.assert_array_equal(a["weights"][key], b["weights"][key], err_msg=key)


BACKENDS = {"numpy": NumpyBackend, "torch": TorchBackend}


@pytest.mark.parametrize(
    ("framework", "validation", "after_steps", "checkpointed", "ema"),
    # 5 steps an epoch in holdout, 4 in each fold: killed in epoch 3; at the start of fold1; in fold1's epoch 2
    [
        ("numpy", "holdout", 12, (0, 2), 0.0),
        ("numpy", "holdout", 12, (0, 2), 0.8),
        ("numpy", "kfold", 9, (0, 2), 0.0),
        ("numpy", "kfold", 14, (1, 1), 0.8),
        ("torch", "holdout", 12, (0, 2), 0.8),
        ("torch", "kfold", 14, (1, 1), 0.0),
    ],
)
def test_interrupted_run_resumes_to_the_same_weights_and_metrics(
    tmp_path, framework, validation, after_steps, checkpointed, ema
):
    """Bit-exact in both frameworks: one process, so one thread count for the whole and the resumed run."""
    params = make_params(model="lab2023_cnn", width=4, epochs=3, batch_size=20, ema=ema, **{"augment.erase": ema})
    params = replace(params, validation=validation)
    if validation == "kfold":
        params = replace(params, epochs=2)
    pool, backend = make_pool(), BACKENDS[framework]
    whole = train_to_end(
        params, pool, backend, Outputs(tmp_path / "w.npz", tmp_path / "w", tmp_path / "w-ck.npz"), framework
    )
    outputs = Outputs(tmp_path / "k.npz", tmp_path / "k", tmp_path / "k-ck.npz")
    with pytest.raises(KeyboardInterrupt):
        train_to_end(params, pool, interrupted(backend, after_steps), outputs, framework)
    saved = TrainingState.load(outputs.checkpoint)
    assert (saved.run, saved.epoch) == checkpointed
    assert_same_run(whole, train_to_end(params, pool, backend, outputs, framework))
    assert not outputs.checkpoint.exists()


def nan_at(backend: type, step: int) -> type:
    """``backend`` whose ``step``-th training step (counted from 1 over the whole run) returns a NaN loss."""

    class Diverging(backend):
        steps = 0

        def train_step(self, x, y):
            Diverging.steps += 1
            loss, center_loss, correct = super().train_step(x, y)
            return (float("nan") if Diverging.steps == step else loss), center_loss, correct

    return Diverging


@pytest.mark.parametrize(
    ("validation", "step", "where", "last"),
    # 5 steps an epoch in holdout, 4 in each fold, 3 epochs
    [
        ("holdout", 3, "epoch 1, batch 3 of holdout", "none (this is the first epoch)"),
        ("holdout", 13, "epoch 3, batch 3 of holdout", "{checkpoint} (after epoch 2 of holdout)"),
        ("kfold", 18, "epoch 2, batch 2 of fold1", "{checkpoint} (after epoch 1 of fold1)"),
    ],
)
def test_nan_loss_names_its_epoch_batch_and_last_checkpoint(tmp_path, validation, step, where, last):
    params = replace(make_params(model="lab2023_cnn", width=4, epochs=3, batch_size=20), validation=validation)
    outputs = Outputs(tmp_path / "m.npz", tmp_path / "live", tmp_path / "ck.npz")
    with pytest.raises(NumericalError) as error:
        train_to_end(params, make_pool(), nan_at(NumpyBackend, step), outputs)
    assert str(error.value) == (
        f"numpy: the loss became nan (cross-entropy) at {where}; training stopped. "
        f"Last good checkpoint: {last.format(checkpoint=outputs.checkpoint)}. "
        f"Lower lr (now {params.lr}) or center_loss.weight, then run again."
    )
    assert not outputs.model.exists() and not outputs.live_dir.exists()


def test_training_state_round_trips_through_arrays():
    state = TrainingState("abc", run=1, epoch=2, schedule_steps=9, rng=np.random.default_rng(3).bit_generator.state)
    state.backend = {"model/w": np.arange(6.0).reshape(2, 3)}
    state.history.append({"run": 1, "epoch": 2, "val_acc": 0.5})
    state.end_run("fold1", {"w": np.ones(2)})
    back = TrainingState.from_arrays(state.to_arrays())
    assert (back.fingerprint, back.run, back.epoch, back.finished) == (
        "abc",
        2,
        0,
        [{"name": "fold1", "final_val_acc": 0.5}],
    )
    np.testing.assert_array_equal(back.best["w"], np.ones(2))


def test_checkpoint_of_other_parameters_is_not_resumed(tmp_path, capsys):
    pool = make_pool()
    params = make_params(model="lab2023_cnn", width=4, epochs=2, batch_size=20)
    outputs = Outputs(tmp_path / "m.npz", tmp_path / "live", tmp_path / "ck.npz")
    with pytest.raises(KeyboardInterrupt):
        train_to_end(params, pool, interrupted(NumpyBackend, 5), outputs)
    other = replace(params, lr=params.lr / 2)
    fresh = train_to_end(other, pool, NumpyBackend, outputs)
    assert "belongs to other parameters or data; starting afresh" in capsys.readouterr().out
    assert_same_run(
        fresh, train_to_end(other, pool, NumpyBackend, Outputs(tmp_path / "f.npz", tmp_path / "f", tmp_path / "f.ck"))
    )


def test_prefetching_changes_nothing(tmp_path):
    """Batches assembled on a thread: the same weights, metrics and checkpointed generator as in line."""
    params = make_params(model="lab2023_cnn", width=4, epochs=2, batch_size=20)
    assert params.augment.enabled and params.sampling == "balanced"
    pool = make_pool()
    runs, saved = {}, {}
    for depth in (0, 2):
        outputs = Outputs(tmp_path / f"{depth}.npz", tmp_path / f"live{depth}", tmp_path / f"ck{depth}.npz")
        with pytest.raises(KeyboardInterrupt):
            Trainer(params, pool, interrupted(NumpyBackend, 6), initial_state(params), outputs, "numpy", depth).run()
        saved[depth] = TrainingState.load(outputs.checkpoint)
        outputs.checkpoint.unlink()
        summary = Trainer(params, pool, NumpyBackend, initial_state(params), outputs, "numpy", depth).run()
        runs[depth] = {"summary": summary, "weights": dict(np.load(outputs.model))}
    assert saved[0].epoch == saved[2].epoch == 1
    assert saved[0].rng == saved[2].rng
    for key in saved[0].backend:
        np.testing.assert_array_equal(saved[0].backend[key], saved[2].backend[key], err_msg=key)
    assert_same_run(runs[0], runs[2])


def test_numpy_and_torch_take_the_same_steps_with_ema_and_erasing(tmp_path):
    """The averaged weights (the model kept when ema is on) agree between frameworks too."""
    params = make_params(
        model="lab2023_cnn", width=4, epochs=2, batch_size=20, lr=0.01, ema=0.9, **{"augment.erase": 0.5}
    )
    pool = make_pool()
    runs = {}
    for framework, backend in (("numpy", NumpyBackend), ("torch", TorchBackend)):
        outputs = Outputs(tmp_path / f"{framework}.npz", tmp_path / framework, tmp_path / f"ck-{framework}.npz")
        runs[framework] = train_to_end(params, pool, backend, outputs, framework)
    live = {}
    for framework, backend in (("numpy", NumpyBackend), ("torch", TorchBackend)):
        outputs = Outputs(
            tmp_path / f"l-{framework}.npz", tmp_path / f"l{framework}", tmp_path / f"lck-{framework}.npz"
        )
        live[framework] = train_to_end(replace(params, ema=0.0), pool, backend, outputs, framework)
    for key in runs["numpy"]["weights"]:
        np.testing.assert_allclose(
            runs["numpy"]["weights"][key], runs["torch"]["weights"][key], rtol=1e-3, atol=1e-4, err_msg=key
        )
    weights = [key for key in live["numpy"]["weights"] if key.endswith("weight")]
    assert any(not np.allclose(runs["numpy"]["weights"][k], live["numpy"]["weights"][k]) for k in weights), (
        "with ema on, the model kept is the average, not the last weights"
    )
    for framework in runs:
        assert runs[framework]["summary"]["final_val_loss"] != live[framework]["summary"]["final_val_loss"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ema": 1.0}, "params.yaml: ema must be a number in 0.0..0.99999; got 1.0"),
        ({"augment.erase": 2}, "params.yaml: augment.erase must be a probability in 0..1 (0 turns it off); got 2"),
        ({"augment.erase_area": [0.5]}, "params.yaml: augment.erase_area must be two fractions of the image"),
    ],
)
def test_ema_and_erasing_parameters_are_checked(change, message):
    with pytest.raises(ParamsError) as error:
        make_params(**change)
    assert str(error.value).startswith(message)
