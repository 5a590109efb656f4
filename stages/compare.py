"""Stage compare: each trained weight file run by both frameworks (the cross-evaluation)."""

import json
from pathlib import Path

import click

from lablib.atomic import staged_file
from lablib.compare import cross_evaluate
from lablib.evaluate import load_test
from lablib.models.specs import get_spec, missing_framework
from lablib.not_run import write_not_run
from lablib.params import load_params
from stages import RESTORE, user_errors

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--prepared", default="data/prepared", show_default=True, type=DirPath)
@click.option("--models", default="models", show_default=True, type=DirPath, help="Holds numpy.npz, torch.npz.")
@click.option("--out", default="evaluation/cross.json", show_default=True, type=click.Path(path_type=Path))
def main(params_path: str, prepared: Path, models: Path, out: Path) -> None:
    """Run each trained weight file (numpy.npz, torch.npz) in both frameworks on the test images and
    write OUT: per weight file, each framework's accuracy, their agreement and largest logit difference.

    If the two frameworks predict differently on the same weights for more than 0.1 % of the images
    the stage fails and writes nothing: the NumPy core and its PyTorch twin have drifted apart. A model
    whose layers have no PyTorch twin is not compared: OUT then records that and why.
    """
    with user_errors("compare", RESTORE.format(stage="compare")):
        params = load_params(params_path)
        train = params.train_for("numpy")
        if reason := missing_framework("torch", train.model, train.width):
            write_not_run(out, reason)
            click.echo(f"compare: not run, {reason}; {out} records it")
            return
        images, labels = load_test(prepared)
        cross = cross_evaluate(get_spec(train.model, train.width), train.model, models, images, labels)
        with staged_file(out) as tmp:
            tmp.write_text(json.dumps(cross, indent=2) + "\n")
    agreement = 100 * cross["min_agreement"]
    click.echo(f"compare: on the same weights NumPy and PyTorch agree on {agreement:.2f}% of the images")


if __name__ == "__main__":
    main()
