"""Stage predict: the course's leaderboard file, DL-test-predict.csv, from the NumPy model."""

from pathlib import Path

import click

from lablib.evaluate import labels_known, load_state, load_test, run_model
from lablib.leaderboard import FILE_NAME, write_leaderboard
from lablib.models.numpy_inference import predict
from lablib.models.specs import get_spec
from lablib.params import load_params
from stages import RESTORE, user_errors

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--prepared", default="data/prepared", show_default=True, type=DirPath)
@click.option("--models", default="models", show_default=True, type=DirPath, help="Holds numpy.npz.")
@click.option("--out", default="leaderboard", show_default=True, type=DirPath)
def main(params_path: str, prepared: Path, models: Path, out: Path) -> None:
    """Write OUT/DL-test-predict.csv (Id,Category: one row per test image, in the test file's order,
    the class the NumPy model predicts) and OUT/metrics.json (its rows and, when the test labels are
    known, the accuracy of the file as written). The file is checked before it replaces the last one."""
    with user_errors("predict", RESTORE.format(stage="predict")):
        train = load_params(params_path).train_for("numpy")
        path = models / "numpy.npz"
        state = load_state(path)
        images, labels = load_test(prepared, labelled=False)
        _, logits = run_model(predict, get_spec(train.model, train.width), state, images, path, train.model)
        known = labels if labels_known(labels) else None
        metrics = write_leaderboard(out / FILE_NAME, logits.argmax(axis=1), known, out / "metrics.json")
    accuracy = f", test accuracy {100 * metrics['test_acc']:.2f}%" if "test_acc" in metrics else ""
    click.echo(f"predict: {out / FILE_NAME}, {metrics['rows']} rows{accuracy}")


if __name__ == "__main__":
    main()
