"""Stages train_numpy and train_torch: one model per framework, same data, loop and parameters."""

import os
from pathlib import Path

import click

from lablib.models.specs import missing_framework
from lablib.params import FRAMEWORKS, load_params
from lablib.train.loop import Outputs
from lablib.train.run import record_not_run, train
from stages import RESTORE, user_errors

PathOption = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.argument("framework", type=click.Choice(FRAMEWORKS))
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--prepared", default="data/prepared", show_default=True, type=PathOption)
@click.option("--split", "split_dir", default="data/split", show_default=True, type=PathOption)
@click.option("--models", default="models", show_default=True, type=PathOption, help="Where FRAMEWORK.npz goes.")
@click.option(
    "--live", default="dvclive", show_default=True, type=PathOption, help="DVCLive logs go to LIVE/FRAMEWORK."
)
@click.option(
    "--checkpoints",
    type=PathOption,
    help="Where the per-epoch checkpoint lives until the run finishes [default: checkpoints, in the repository].",
)
def main(
    framework: str,
    params_path: str,
    prepared: Path,
    split_dir: Path,
    models: Path,
    live: Path,
    checkpoints: Path | None,
) -> None:
    """Train FRAMEWORK's model (numpy or torch). A run that was killed resumes from its last epoch.

    A model whose layers have no PyTorch twin trains in NumPy only: train torch then trains nothing and
    writes, as its model file and its metrics, the record that it did not run and why."""
    outputs = Outputs(
        model=models / f"{framework}.npz",
        live_dir=live / framework,
        checkpoint=checkpoint_path(checkpoints, framework),
    )
    with user_errors(f"train_{framework}", RESTORE.format(stage=f"train_{framework}")):
        params = load_params(params_path)
        train_params = params.train_for(framework)
        if reason := missing_framework(framework, train_params.model, train_params.width):
            record_not_run(outputs, reason)
            click.echo(f"{framework}: not trained, {reason}; {outputs.model} records it")
            return
        summary = train(framework, params, prepared, split_dir, outputs)
    click.echo(
        f"{framework}: best validation accuracy {100 * summary['best_val_acc']:.2f}% at epoch "
        f"{summary['best_epoch']}, final {100 * summary['final_val_acc']:.2f}%; model in {outputs.model}"
    )


def checkpoint_path(folder: Path | None, framework: str) -> Path:
    """The checkpoint file of this run, in a place that outlives a queued experiment's temporary copy.

    A queued ``dvc exp run`` trains in a temporary copy of the repository that is deleted when the
    run ends or dies; DVC tells its stages the real repository (``DVC_ROOT``) and the experiment's
    name (``DVC_EXP_NAME``), so the checkpoint goes to the real repository's ``checkpoints/``, named
    by the experiment so that parallel runs never share one. Running the experiment again resumes it.
    """
    if folder is not None:
        return folder / f"{framework}.npz"
    root = Path(os.environ.get("DVC_ROOT", "."))
    name = os.environ.get("DVC_EXP_NAME")
    if name and root.resolve() != Path.cwd().resolve():
        return root / "checkpoints" / f"{name}-{framework}.npz"
    return Path("checkpoints") / f"{framework}.npz"


if __name__ == "__main__":
    main()
