"""Training and evaluation throughput of the NumPy core beside PyTorch's CPU kernels, same weights.

    python -m benchmarks.speed                       # both models, the default batch sizes
    python -m benchmarks.speed --model lab2025_cnn --batch-size 250 --json

Steps alternate between the frameworks inside one run, after a warm-up, so both see the same
machine state; the figures are medians. Below batch 64 a timed sample is a block of consecutive
steps (64 images' worth), so that a sample of one framework does not pay for the threads and
caches the other left behind, nor for the timer. The thread count of BLAS, of the NumPy core's pool
and of PyTorch is whatever the environment sets (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and the like);
the package lets OpenBLAS's idle threads sleep at once (``benchmarks/__init__.py``), or they would
take PyTorch's cores.

Efficiency: the run measures the machine's float32 matrix-product rate (large square products in
NumPy and in PyTorch, the faster of the two), counts the multiply-adds of a training step's
convolutions and linear layers from the model's shapes, and reports the fraction of that floor
(the step's FLOPs at the GEMM rate) each framework reaches. It also times the NumPy step's own
matrix products alone, at their shapes and in its layers' layouts: the step's time if everything
else cost nothing, and so the best training ratio NumPy could reach against PyTorch's whole step;
the same for an evaluation forward's products against PyTorch's whole forward. Per-layer tables
show where the rest goes, in a training step and in the folded evaluation network.

Memory: the peak of a training step and of an evaluation batch above the model and its data, each
framework measured in a process of its own (``benchmarks/memory.py``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import click
import numpy as np
import torch

from benchmarks import memory
from lablib import nn, optim
from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import IMAGE_SIZE, Spec, get_spec
from lablib.models.torch_model import build_torch, load_numpy_state
from lablib.nn import Conv2d, CrossEntropyLoss, Linear, no_grad, parallel
from lablib.nn.fusion import fuse_for_inference

DEFAULT_BATCHES = {"lab2025_cnn": (250,), "lab2023_cnn": (1, 64)}


@dataclass
class Result:
    model: str
    batch_size: int
    numpy_train_ms: float
    torch_train_ms: float
    numpy_eval_ms: float
    torch_eval_ms: float
    numpy_train_img_s: float
    torch_train_img_s: float
    train_ratio: float
    numpy_eval_img_s: float
    torch_eval_img_s: float
    eval_ratio: float
    numpy_train_steps_s: float
    numpy_train_peak_mb: float
    torch_train_peak_mb: float
    numpy_eval_peak_mb: float
    torch_eval_peak_mb: float
    step_gflop: float
    gemm_gflops: float
    floor_ms: float
    numpy_floor_fraction: float
    torch_floor_fraction: float
    numpy_products_ms: float
    products_ceiling: float
    numpy_eval_products_ms: float
    eval_products_ceiling: float
    layers: list[dict[str, float | str]]
    eval_layers: list[dict[str, float | str]]


def numpy_step(model: Classifier, optimizer: optim.Optimizer, x: np.ndarray, y: np.ndarray) -> None:
    criterion = CrossEntropyLoss()
    optimizer.zero_grad()
    criterion(model(x), y)
    model.backward(criterion.backward())
    optimizer.step()


def torch_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Seconds per call of ``fn``, over ``repeat`` consecutive calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def gemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matrix-product rate: the median of ``size``-square products, NumPy's or
    PyTorch's, whichever is faster."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    rates = []
    for product in (lambda: a @ b, lambda: ta @ tb):
        product()
        seconds = statistics.median(timed(product) for _ in range(repeats))
        rates.append(2 * size**3 / seconds / 1e9)
    return max(rates)


def step_products(spec: Spec, batch_size: int, training: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random operands of every matrix product of one NumPy training step, in its layers' layouts, or
    of one evaluation forward where ``training`` is False.

    A Conv2d multiplies its ``(out, C*K*K)`` weight by the ``(C*K*K, OH*OW*N)`` columns, then the
    output gradient by the columns' transpose (weight gradient) and the weight's transpose by the
    gradient (input gradient); a Linear computes ``x @ Wᵀ``, ``gᵀ @ x`` and ``g @ W``. A model's first
    layer has no input gradient; a forward has only the first product of each layer (a folded
    BatchNorm changes no shape). The shapes come from one forward of a single image.
    """
    rng = np.random.default_rng(0)

    def operand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    model = build_numpy(spec, seed=0).eval()
    products = []
    h = np.zeros((1, 1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for layer in [*model.features, *model.classifier]:
        out = layer.forward(h)
        if isinstance(layer, Conv2d | Linear):
            weight = operand(out.shape[1], layer.weight.data[0].size)
            if isinstance(layer, Conv2d):
                cols = operand(weight.shape[1], out[0, 0].size * batch_size)
                grad = operand(weight.shape[0], cols.shape[1])
                layer_products = [(weight, cols), (grad, cols.T), (weight.T, grad)]
            else:
                x, grad = operand(batch_size, weight.shape[1]), operand(batch_size, weight.shape[0])
                layer_products = [(x, weight.T), (grad.T, x), (grad, weight)]
            if not training:
                layer_products = layer_products[:1]
            elif not layer.needs_input_grad:
                layer_products = layer_products[:2]
            products += layer_products
        h = out
    return products


def products_gflop(products: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """GFLOP of the products, multiply and add counted apart: ``2 * m * k * n`` each."""
    return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in products) / 1e9


def products_ms(products: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> float:
    """Median milliseconds of running the products one after the other, and nothing else."""

    def step() -> None:
        for a, b in products:
            a @ b

    step()
    return median_ms([timed(step) for _ in range(repeats)])


def layer_breakdown(model: Classifier, x: np.ndarray, y: np.ndarray, repeats: int) -> list[dict[str, float | str]]:
    """Median forward and backward milliseconds of each leaf layer of the NumPy model, in order; a pair
    that runs as one (a BatchNorm and its SiLU, ``Module.fuses``) is one row, as the step runs it."""
    model.train()
    units = _units(model)
    forward: list[list[float]] = [[] for _ in units]
    backward: list[list[float]] = [[] for _ in units]
    criterion = CrossEntropyLoss()
    for _ in range(repeats):
        criterion(_timed_forward(units, x, forward), y)
        grad = criterion.backward()
        for index in reversed(range(len(units))):
            start = time.perf_counter()
            grad = units[index][0].backward(grad, *units[index][1:])
            backward[index].append(time.perf_counter() - start)
    return [
        {"layer": _unit_name(unit, model), "forward_ms": median_ms(f), "backward_ms": median_ms(b)}
        for unit, f, b in zip(units, forward, backward, strict=True)
    ]


@no_grad()
def eval_layer_breakdown(inference: Classifier, x: np.ndarray, repeats: int) -> list[dict[str, float | str]]:
    """Median milliseconds of each leaf layer of the folded evaluation network (``fuse_for_inference``)."""
    units = _units(inference)
    forward: list[list[float]] = [[] for _ in units]
    for _ in range(repeats):
        _timed_forward(units, x, forward)
    return [{"layer": _unit_name(unit, inference), "ms": median_ms(f)} for unit, f in zip(units, forward, strict=True)]


def _units(model: Classifier) -> list[list[nn.Module]]:
    """The model's leaf layers in order, a layer and the one it runs inside (``Module.fuses``) as one unit."""
    units: list[list[nn.Module]] = []
    for layer in [*model.features, *model.classifier]:
        if units and len(units[-1]) == 1 and units[-1][0].fuses(layer):
            units[-1].append(layer)
        else:
            units.append([layer])
    return units


def _timed_forward(units: list[list[nn.Module]], x: np.ndarray, seconds: list[list[float]]) -> np.ndarray:
    """Run ``x`` through the units, appending each unit's seconds to its list; returns the output."""
    for index, unit in enumerate(units):
        start = time.perf_counter()
        x = unit[0].forward(x, *unit[1:])
        seconds[index].append(time.perf_counter() - start)
    return x


def _unit_name(unit: list[nn.Module], model: Classifier) -> str:
    """``index: Layer(options)`` for one layer, ``index-last: BatchNorm2d(32) + SiLU`` for a fused pair."""
    index = next(i for i, layer in enumerate([*model.features, *model.classifier]) if layer is unit[0])
    if len(unit) == 1:
        return f"{index}: {unit[0]!r}".split("\n")[0]
    first = f"{type(unit[0]).__name__}({unit[0].extra_repr().split(',')[0]})"
    return f"{index}-{index + len(unit) - 1}: " + " + ".join([first, *(type(m).__name__ for m in unit[1:])])


def benchmark(name: str, batch_size: int, steps: int, warmup: int, width: int, gemm: float) -> Result:
    spec = get_spec(name, width)
    rng = np.random.default_rng(0)
    np_model = build_numpy(spec, rng=rng)
    torch_model = build_torch(spec)
    load_numpy_state(torch_model, np_model.state_dict())
    np_opt = optim.Adam(list(np_model.parameters()), lr=1e-4)
    torch_opt = torch.optim.Adam(torch_model.parameters(), lr=1e-4)
    x = rng.uniform(-0.5, 0.5, (batch_size, 1, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batch_size)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def np_train() -> None:
        np_model.train()
        numpy_step(np_model, np_opt, x, y)

    def torch_train() -> None:
        torch_model.train()
        torch_step(torch_model, torch_opt, tx, ty)

    np_inference = fuse_for_inference(np_model)  # as evaluation runs it: BatchNorm folded, under no_grad

    @no_grad()
    def np_eval() -> None:
        np_inference(x)

    @torch.no_grad()
    def torch_eval() -> None:
        torch_model.eval()
        torch_model(tx)

    block = max(1, 64 // batch_size)
    samples: dict[str, list[float]] = {"np_train": [], "torch_train": [], "np_eval": [], "torch_eval": []}
    for step in range(warmup + steps):
        timings = {
            "np_train": timed(np_train, block),
            "torch_train": timed(torch_train, block),
            "np_eval": timed(np_eval, block),
            "torch_eval": timed(torch_eval, block),
        }
        if step >= warmup:
            for key, value in timings.items():
                samples[key].append(value)
    ms = {key: median_ms(value) for key, value in samples.items()}
    img_s = {key: 1000 * batch_size / value for key, value in ms.items()}
    products = step_products(spec, batch_size)
    step_gflop = products_gflop(products)
    floor_ms = 1000 * step_gflop / gemm
    numpy_products = products_ms(products, max(3, steps // 2))
    numpy_eval_products = products_ms(step_products(spec, batch_size, training=False), max(3, steps // 2))
    return Result(
        model=name,
        batch_size=batch_size,
        numpy_train_ms=ms["np_train"],
        torch_train_ms=ms["torch_train"],
        numpy_eval_ms=ms["np_eval"],
        torch_eval_ms=ms["torch_eval"],
        numpy_train_img_s=img_s["np_train"],
        torch_train_img_s=img_s["torch_train"],
        train_ratio=img_s["np_train"] / img_s["torch_train"],
        numpy_eval_img_s=img_s["np_eval"],
        torch_eval_img_s=img_s["torch_eval"],
        eval_ratio=img_s["np_eval"] / img_s["torch_eval"],
        numpy_train_steps_s=1000 / ms["np_train"],
        **memory.peaks(name, batch_size, width),
        step_gflop=step_gflop,
        gemm_gflops=gemm,
        floor_ms=floor_ms,
        numpy_floor_fraction=floor_ms / ms["np_train"],
        torch_floor_fraction=floor_ms / ms["torch_train"],
        numpy_products_ms=numpy_products,
        products_ceiling=ms["torch_train"] / numpy_products,
        numpy_eval_products_ms=numpy_eval_products,
        eval_products_ceiling=ms["torch_eval"] / numpy_eval_products,
        layers=layer_breakdown(np_model, x, y, max(3, steps // 2)),
        eval_layers=eval_layer_breakdown(np_inference, x, max(3, steps // 2)),
    )


def format_table(results: list[Result]) -> str:
    header = (
        f"{'model':<12} {'batch':>5} | {'train ms':>17} | {'train img/s':>17} {'ratio':>5} | "
        f"{'eval img/s':>17} {'ratio':>5} | {'peak MB: train, eval':>27} | {'GEMM floor':>28}"
    )
    lines = [
        header,
        f"{'':<12} {'':>5} | {'numpy':>8} {'torch':>8} | {'numpy':>8} {'torch':>8} {'':>5} | "
        f"{'numpy':>8} {'torch':>8} {'':>5} | {'numpy':>6} {'torch':>6} {'numpy':>6} {'torch':>6} | "
        f"{'GFLOP':>6} {'ms':>7} {'numpy':>6} {'torch':>6}",
        "-" * len(header),
    ]
    for r in results:
        lines.append(
            f"{r.model:<12} {r.batch_size:>5} | {r.numpy_train_ms:>8.2f} {r.torch_train_ms:>8.2f} | "
            f"{r.numpy_train_img_s:>8.0f} {r.torch_train_img_s:>8.0f} {r.train_ratio:>5.2f} | "
            f"{r.numpy_eval_img_s:>8.0f} {r.torch_eval_img_s:>8.0f} {r.eval_ratio:>5.2f} | "
            f"{r.numpy_train_peak_mb:>6.0f} {r.torch_train_peak_mb:>6.0f} "
            f"{r.numpy_eval_peak_mb:>6.0f} {r.torch_eval_peak_mb:>6.0f} | "
            f"{r.step_gflop:>6.2f} {r.floor_ms:>7.2f} {r.numpy_floor_fraction:>6.0%} {r.torch_floor_fraction:>6.0%}"
        )
    if results:
        lines.append(
            f"GEMM floor: a training step's GFLOP at {results[0].gemm_gflops:.0f} GFLOP/s, the float32 GEMM rate "
            "of this run; numpy, torch: the fraction of it each reaches."
        )
    for r in results:
        lines.append(
            f"{r.model} at batch {r.batch_size}: NumPy's matrix products alone take {r.numpy_products_ms:.2f} ms "
            f"({r.numpy_products_ms / r.numpy_train_ms:.0%} of its step); with nothing else to do it would train at "
            f"{r.products_ceiling:.2f}x PyTorch's speed."
        )
        lines.append(
            f"{r.model} at batch {r.batch_size}: in evaluation NumPy's matrix products alone take "
            f"{r.numpy_eval_products_ms:.2f} ms ({r.numpy_eval_products_ms / r.numpy_eval_ms:.0%} of its forward); "
            f"with nothing else to do it would evaluate at {r.eval_products_ceiling:.2f}x PyTorch's speed."
        )
    for r in results:
        lines.append(f"\nNumPy {r.model}, batch {r.batch_size}, per layer (median ms):")
        lines.append(f"  {'layer':<60} {'forward':>8} {'backward':>8}")
        for layer in r.layers:
            lines.append(f"  {layer['layer'][:60]:<60} {layer['forward_ms']:>8.2f} {layer['backward_ms']:>8.2f}")
        lines.append(f"NumPy {r.model}, batch {r.batch_size}, evaluation per layer, BatchNorm folded (median ms):")
        for layer in r.eval_layers:
            lines.append(f"  {layer['layer'][:60]:<60} {layer['ms']:>8.2f}")
    return "\n".join(lines)


@click.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Choice(sorted(DEFAULT_BATCHES)),
    help="Model to time (repeatable); default both.",
)
@click.option(
    "--batch-size",
    "batch_sizes",
    multiple=True,
    type=click.IntRange(1),
    help="Batch size (repeatable); default 250 for lab2025_cnn, 1 and 64 for lab2023_cnn.",
)
@click.option("--steps", default=10, show_default=True, type=click.IntRange(1), help="Timed samples per framework.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(0), help="Untimed steps first.")
@click.option("--width", default=20, show_default=True, help="Filters of lab2023_cnn.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
def main(
    models: tuple[str, ...], batch_sizes: tuple[int, ...], steps: int, warmup: int, width: int, as_json: bool
) -> None:
    """Time full training steps (forward, cross-entropy, backward, Adam) and evaluation forwards."""
    gemm = gemm_gflops()
    results = []
    for name in models or tuple(DEFAULT_BATCHES):
        for batch_size in batch_sizes or DEFAULT_BATCHES[name]:
            results.append(benchmark(name, batch_size, steps, max(warmup, 2), width, gemm))
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
    else:
        click.echo(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}, "
            f"{parallel.get_num_threads()} threads; float32 GEMM {gemm:.0f} GFLOP/s"
        )
        click.echo(format_table(results))


if __name__ == "__main__":
    main()
