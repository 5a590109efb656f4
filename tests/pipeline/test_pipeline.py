"""End to end: the whole DVC pipeline on a small subset, in a temporary git repository."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib.data.fashion_mnist import FILES
from lablib.train.checkpoint import load_npz, unpack_json

pytestmark = pytest.mark.slow

TIMING_KEYS = {"mean_epoch_seconds", "images_per_second"}


@pytest.fixture(scope="module")
def repo(workspace_factory):
    ws = workspace_factory()
    ws.run("dvc", "repro")
    return ws


def metrics(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {key: value for key, value in data.items() if key not in TIMING_KEYS and key != "step"}


def test_repro_builds_everything_and_then_nothing(repo):
    for name, sha256 in ((name, entry.sha256) for name, entry in FILES.items()):
        assert hashlib.sha256(gzip.decompress((repo.root / "data/raw" / name).read_bytes())).hexdigest() == sha256
    for path in ("models/numpy.npz", "models/torch.npz", "dvclive/numpy/metrics.json", "dvclive/torch/metrics.json"):
        assert (repo.root / path).is_file(), path
    assert not (repo.root / "checkpoints/numpy.npz").exists(), "a finished run leaves no checkpoint"
    second = repo.run("dvc", "repro")
    assert "Data and pipelines are up to date" in second.stdout, second.stdout


def test_split_is_stratified(repo):
    prepared = repo.root / "data/prepared"
    assert np.bincount(np.load(prepared / "train_labels.npy")).tolist() == [30] * 10
    assert np.bincount(np.load(prepared / "val_labels.npy")).tolist() == [10] * 10
    assert np.load(prepared / "test_images.npy", mmap_mode="r").shape == (10000, 1, 28, 28)


def test_both_frameworks_log_every_epoch(repo):
    for framework in ("numpy", "torch"):
        summary = json.loads((repo.root / f"dvclive/{framework}/metrics.json").read_text())
        assert summary["epochs"] == 2
        assert 0.0 <= summary["best_val_acc"] <= 1.0
        rows = (repo.root / f"dvclive/{framework}/plots/metrics/val/acc.tsv").read_text().splitlines()
        assert len(rows) == 1 + 2


def _out(ws, name: str) -> Path:
    """Outputs of runs made outside the pipeline go beside the repository, never into it."""
    return ws.root.parent / "runs" / name


def _train_args(ws, framework: str, name: str, params: Path) -> tuple[str, ...]:
    out = _out(ws, name)
    return (
        "python",
        "-m",
        "stages.train",
        framework,
        "--params",
        str(params),
        "--models",
        str(out / "models"),
        "--live",
        str(out / "live"),
        "--checkpoints",
        str(out / "ck"),
    )


def _train(ws, framework: str, name: str, params: Path, check: bool = True) -> subprocess.CompletedProcess:
    return ws.run(*_train_args(ws, framework, name, params), check=check)


def _params_file(ws, name: str, **changes) -> Path:
    params = yaml.safe_load((ws.root / "params.yaml").read_text())
    params.update(changes)
    path = ws.root.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_same_seed_gives_same_metrics_and_weights(repo, framework):
    params = _params_file(repo, "same_seed")
    for name in ("a", "b"):
        _train(repo, framework, f"{framework}-{name}", params)
    a, b = (_out(repo, f"{framework}-{name}") for name in ("a", "b"))
    assert metrics(a / f"live/{framework}/metrics.json") == metrics(b / f"live/{framework}/metrics.json")
    wa, wb = load_npz(a / f"models/{framework}.npz"), load_npz(b / f"models/{framework}.npz")
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_killed_run_resumes_to_the_same_weights(repo, framework):
    """SIGKILL in epoch 2, then the same command: bit for bit the uninterrupted run's weights and metrics.

    Every run here inherits one environment, so one thread count: PyTorch's CPU sums are
    reproducible at a fixed thread count, not across thread counts.
    """
    params = _params_file(repo, "resume", epochs=4)
    _train(repo, framework, f"{framework}-whole", params)
    checkpoint = _out(repo, f"{framework}-killed") / f"ck/{framework}.npz"
    process = subprocess.Popen(
        _train_args(repo, framework, f"{framework}-killed", params),
        cwd=repo.root,
        env=repo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert unpack_json(load_npz(checkpoint)["meta"])["epoch"] < 4
    resumed = _train(repo, framework, f"{framework}-killed", params)
    assert f"{framework}: resuming holdout at epoch" in resumed.stdout, resumed.stdout
    assert not checkpoint.exists()
    whole, killed = (_out(repo, f"{framework}-{name}") for name in ("whole", "killed"))
    live = f"live/{framework}/metrics.json"
    assert metrics(whole / live) == metrics(killed / live)
    ww, wk = load_npz(whole / f"models/{framework}.npz"), load_npz(killed / f"models/{framework}.npz")
    assert ww.keys() == wk.keys()
    for key in ww:
        np.testing.assert_array_equal(ww[key], wk[key], err_msg=key)


def test_nan_loss_stops_with_its_epoch_and_batch(repo):
    params = _params_file(repo, "nan", optimizer="sgd", lr=1e30, epochs=3)
    result = _train(repo, "numpy", "nan", params, check=False)
    assert result.returncode == 1
    expected = "the loss became nan (cross-entropy) at epoch 1, batch 2 of holdout; training stopped. "
    assert expected in result.stderr, result.stderr
    assert "Last good checkpoint: none (this is the first epoch)." in result.stderr
    assert "Traceback" not in result.stderr
    assert not (_out(repo, "nan") / "models/numpy.npz").exists()
    assert not (_out(repo, "nan") / "live/numpy").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "adamm"}, "optimizer must be one of sgd, adam, adamw"),
        ({"lr": -0.1}, "lr must be a number > 0"),
        ({"batch_size": 100000}, "batch_size 100000 is larger than the training data"),
    ],
)
def test_bad_parameter_is_refused_before_any_work(repo, change, message):
    params = _params_file(repo, "bad", **change)
    result = _train(repo, "numpy", "bad", params, check=False)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not _out(repo, "bad").exists()


def _column(path: Path) -> list[float]:
    """The values of a DVCLive plot file, one per epoch."""
    return [float(line.split("\t")[1]) for line in path.read_text().splitlines()[1:]]


def _mean_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def test_kfold_reports_each_fold_and_rotating_rotates(repo):
    from lablib.models.numpy_inference import predict
    from lablib.models.specs import get_spec
    from lablib.train.loop import Pool

    params = _params_file(repo, "kfold", validation="kfold", epochs=1)
    _train(repo, "numpy", "kfold", params)
    summary = json.loads((_out(repo, "kfold") / "live/numpy/metrics.json").read_text())
    assert set(summary["kfold"]) == {"fold0", "fold1", "fold2", "mean_val_acc", "std_val_acc"}
    folds = [summary["kfold"][f"fold{k}"] for k in range(3)]
    assert summary["kfold"]["mean_val_acc"] == pytest.approx(np.mean(folds))

    # Rotating: one model; epoch e validates on fold (e - 1) mod 3 and trains on the other two.
    params = _params_file(repo, "rotating", validation="rotating", epochs=3)
    _train(repo, "numpy", "rotating", params)
    rotating = _out(repo, "rotating")
    summary = json.loads((rotating / "live/numpy/metrics.json").read_text())
    assert "kfold" not in summary and summary["epochs"] == 3
    val_loss = _column(rotating / "live/numpy/plots/metrics/val/loss.tsv")
    val_acc = _column(rotating / "live/numpy/plots/metrics/val/acc.tsv")
    assert len(val_loss) == len(val_acc) == 3
    # The model left after epoch 3 has epoch 3's validation loss and accuracy on fold 2, and only there.
    pool = Pool.load(repo.root / "data/prepared", repo.root / "data/split")
    spec = get_spec(yaml.safe_load(params.read_text())["model"])
    state = load_npz(rotating / "models/numpy.npz")
    losses, accs = [], []
    for fold in range(3):
        images, labels = pool.images[pool.folds == fold], pool.labels[pool.folds == fold]
        logits = predict(spec, state, images)[1]
        losses.append(_mean_cross_entropy(logits, labels))
        accs.append(float(np.mean(logits.argmax(axis=1) == labels)))
    assert [loss == pytest.approx(val_loss[2], rel=1e-6) for loss in losses] == [False, False, True], (losses, val_loss)
    assert accs[2] == val_acc[2], (accs, val_acc)


def test_cuda_without_a_gpu_stops_with_one_message_before_any_work(repo):
    params = yaml.safe_load((repo.root / "params.yaml").read_text())
    params["torch"]["device"] = "cuda"
    path = repo.root.parent / "cuda.yaml"
    path.write_text(yaml.safe_dump(params))
    result = repo.run(*_train_args(repo, "torch", "cuda", path), check=False, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 1
    message = "params.yaml: torch.device is cuda but no CUDA GPU is visible; use auto or cpu"
    assert result.stderr.count(message) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "Epoch:" not in result.stdout
    assert not _out(repo, "cuda").exists(), "it wrote before refusing"


def test_experiment_changes_metrics(repo):
    repo.commit("baseline results")
    repo.run("dvc", "exp", "run", "-S", "lr=0.001")
    diff = repo.run("dvc", "metrics", "diff", "--json")
    changed = json.loads(diff.stdout)
    assert "dvclive/numpy/metrics.json" in changed, diff.stdout
    assert any(value.get("diff") for value in changed["dvclive/numpy/metrics.json"].values())
    shown = repo.run("dvc", "exp", "show", "--json")
    assert "lr" in shown.stdout
    plots = repo.run("dvc", "plots", "diff", "-o", str(repo.root.parent / "plots"))
    assert (repo.root.parent / "plots" / "index.html").is_file(), plots.stdout


def snapshot(root: Path, *paths: str) -> dict[str, bytes]:
    """Every file under ``paths`` (files or folders), by path."""
    files = [p for path in paths for p in ([root / path] if (root / path).is_file() else (root / path).rglob("*"))]
    return {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}


def stage_error(stderr: str) -> str:
    """The stage's own message (click's ``Error: ...``), without DVC's lines after it."""
    return stderr[stderr.index("Error: ") : stderr.index("ERROR: failed to reproduce")].rstrip()


def test_failed_fetch_under_dvc_ends_with_the_command_that_restores_the_data(repo, tmp_path):
    before = snapshot(repo.root, "data/raw")
    tampered = tmp_path / "tampered"
    shutil.copytree(repo.env["FASHION_MNIST_DIR"], tampered)
    labels = bytearray(gzip.decompress((tampered / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10  # the first label: still a valid IDX file, no longer the official one
    (tampered / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    result = repo.run("dvc", "repro", "-f", "fetch", check=False, env={"FASHION_MNIST_DIR": str(tampered)})
    assert result.returncode != 0
    message = stage_error(result.stderr)
    assert "t10k-labels-idx1-ubyte.gz: the SHA-256 of its decompressed bytes" in message and "Traceback" not in message
    assert message.endswith("dvc checkout data/raw"), message
    assert not (repo.root / "data/raw").exists(), "DVC deletes a stage's outputs before running it"
    repo.run("dvc", "checkout", "data/raw")
    assert snapshot(repo.root, "data/raw") == before
    assert "Data and pipelines are up to date" in repo.run("dvc", "status").stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "adamm"}, "optimizer must be one of sgd, adam, adamw"),
        ({"optimizer": "sgd", "lr": 1e30}, "the loss became"),
    ],
)
def test_failed_training_under_dvc_ends_with_the_command_that_restores_it(repo, change, message):
    outputs = ("models/numpy.npz", "dvclive/numpy/metrics.json", "dvclive/numpy/plots/metrics")
    before, params = snapshot(repo.root, *outputs), (repo.root / "params.yaml").read_text()
    repo.set_params(change)
    result = repo.run("dvc", "repro", "train_numpy", check=False)
    assert result.returncode != 0
    error = stage_error(result.stderr)
    assert message in error and "Traceback" not in error
    assert error.endswith("dvc repro train_numpy"), error
    (repo.root / "params.yaml").write_text(params)
    restored = repo.run("dvc", "repro", "train_numpy")
    assert "Stage 'train_numpy' is cached - skipping run" in restored.stdout, restored.stdout
    assert snapshot(repo.root, *outputs) == before


def test_report_holds_every_figure_and_this_runs_numbers(repo):
    from matplotlib.image import imread

    from lablib.report import FIGURES

    report = (repo.root / "reports/report.md").read_text()
    for name in FIGURES.values():
        path = repo.root / "reports/figures" / name
        if name == "confusion_torch.png" and name not in report:  # identical to NumPy's: one matrix, said so
            assert not path.exists() and "are the same, cell for cell" in report
            continue
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        pixels = imread(path)
        assert min(pixels.shape[:2]) > 200 and pixels.std() > 0.01, name
        assert name in report
    for framework in ("numpy", "torch"):
        evaluation = json.loads((repo.root / f"evaluation/{framework}/metrics.json").read_text())
        assert f"{100 * evaluation['test_acc']:.2f}" in report
        rows = (repo.root / f"evaluation/{framework}/confusion.csv").read_text().splitlines()
        assert len(rows) - 1 == evaluation["test_images"] == 10000
    cross = json.loads((repo.root / "evaluation/cross.json").read_text())
    assert cross["min_agreement"] >= 0.999


def test_numpy_stages_run_without_pytorch_installed(workspace_factory, without_torch):
    ws = workspace_factory()
    hidden = ws.run("python", "-c", "import torch", check=False, env=without_torch)
    assert hidden.returncode != 0 and "ModuleNotFoundError" in hidden.stderr, "the test failed to hide torch"
    result = ws.run("dvc", "repro", "evaluate_numpy", env=without_torch)
    assert "Running stage 'train_numpy'" in result.stdout and "Running stage 'evaluate_numpy'" in result.stdout
    metrics = json.loads((ws.root / "evaluation/numpy/metrics.json").read_text())
    assert metrics["test_images"] == 10000 and 0.0 <= metrics["test_acc"] <= 1.0
    assert not (ws.root / "models/torch.npz").exists() and not (ws.root / "dvclive/torch").exists()
    assert not (ws.root / "evaluation/torch").exists() and not (ws.root / "evaluation/cross.json").exists()
