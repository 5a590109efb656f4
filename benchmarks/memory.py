"""Peak memory of one training step or one evaluation batch, each framework in a process of its own.

    python -m benchmarks.memory                                   # both models, both frameworks
    python -m benchmarks.memory --probe numpy train lab2025_cnn 250 20   # one measurement (a child process)

A measurement is the resident memory a step needs above the built model and its data: the process
builds both and reads its resident size, takes one step (so that Adam's moments, layer buffers and
the allocators' pools exist, as they do in a training), resets the kernel's high-water mark
(``/proc/self/clear_refs``), takes the step again and reads the high-water mark. Each figure comes
from a fresh process, so neither framework pays for or profits from what the other's allocator
keeps. Linux only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{STATUS} has no {field}")


def probe(framework: str, mode: str, model: str, batch_size: int, width: int) -> float:
    """In this process: the MB above the built model and its data that the second ``mode`` step of
    ``framework`` reaches at its peak (what the first step left behind included)."""
    import numpy as np

    from benchmarks.speed import numpy_step, torch_step
    from lablib import optim
    from lablib.data.fashion_mnist import NUM_CLASSES
    from lablib.models.numpy_model import build_numpy
    from lablib.models.specs import IMAGE_SIZE, get_spec
    from lablib.nn import no_grad
    from lablib.nn.fusion import fuse_for_inference

    spec = get_spec(model, width)
    rng = np.random.default_rng(0)
    np_model = build_numpy(spec, rng=rng)
    x = rng.uniform(-0.5, 0.5, (batch_size, 1, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batch_size)
    if framework == "numpy":
        optimizer = optim.Adam(list(np_model.parameters()), lr=1e-4)
        np_inference = fuse_for_inference(np_model)  # as evaluation runs it

        def step() -> None:
            if mode == "train":
                numpy_step(np_model.train(), optimizer, x, y)
            else:
                with no_grad():
                    np_inference(x)
    else:
        import torch

        from lablib.models.torch_model import build_torch, load_numpy_state

        torch_model = build_torch(spec)
        load_numpy_state(torch_model, np_model.state_dict())
        del np_model
        torch_optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-4)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step() -> None:
            if mode == "train":
                torch_step(torch_model.train(), torch_optimizer, tx, ty)
            else:
                with torch.no_grad():
                    torch_model.eval()(tx)

    before = _status_kb("VmRSS")
    step()
    CLEAR_REFS.write_text("5")  # resets VmHWM to the current resident size
    step()
    return (_status_kb("VmHWM") - before) / 1024


def measure(framework: str, mode: str, model: str, batch_size: int, width: int) -> float:
    """:func:`probe` run in a fresh Python process."""
    args = [framework, mode, model, str(batch_size), str(width)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--probe", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe {' '.join(args)} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def peaks(model: str, batch_size: int, width: int) -> dict[str, float]:
    """``{framework}_{mode}_peak_mb`` for both frameworks, training step and evaluation batch."""
    return {
        f"{framework}_{mode}_peak_mb": measure(framework, mode, model, batch_size, width)
        for mode in ("train", "eval")
        for framework in ("numpy", "torch")
    }


@click.command()
@click.option("--probe", "probe_args", nargs=5, help="FRAMEWORK MODE MODEL BATCH WIDTH: one measurement, here.")
def main(probe_args: tuple[str, str, str, str, str] | None) -> None:
    """Print the peak memory of a training step and an evaluation batch per framework."""
    if probe_args:
        framework, mode, model, batch_size, width = probe_args
        click.echo(json.dumps({"peak_mb": probe(framework, mode, model, int(batch_size), int(width))}))
        return
    from benchmarks.speed import DEFAULT_BATCHES

    click.echo(f"{'model':<12} {'batch':>5} | {'train MB numpy':>14} {'torch':>7} | {'eval MB numpy':>13} {'torch':>7}")
    for model, batches in DEFAULT_BATCHES.items():
        for batch_size in batches:
            p = peaks(model, batch_size, 20)
            click.echo(
                f"{model:<12} {batch_size:>5} | {p['numpy_train_peak_mb']:>14.1f} {p['torch_train_peak_mb']:>7.1f} | "
                f"{p['numpy_eval_peak_mb']:>13.1f} {p['torch_eval_peak_mb']:>7.1f}"
            )


if __name__ == "__main__":
    main()
