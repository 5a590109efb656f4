"""Stage evaluate: both models on the official test images, each one's weights run by both frameworks."""

import json
from contextlib import ExitStack
from pathlib import Path

import click
import numpy as np

from lablib.atomic import staged_file
from lablib.evaluate import evaluate, load_state, load_test, write_predictions
from lablib.models import get_spec
from lablib.params import FRAMEWORKS, load_params
from stages import user_errors

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--prepared", default="data/prepared", show_default=True, type=DirPath)
@click.option("--models", default="models", show_default=True, type=DirPath, help="Holds numpy.npz, torch.npz.")
@click.option("--out", default="evaluation", show_default=True, type=DirPath)
def main(params_path: str, prepared: Path, models: Path, out: Path) -> None:
    """Evaluate both models on the test images and write OUT/metrics.json, OUT/confusion_numpy.csv and
    OUT/confusion_torch.csv (one actual,predicted row per image, for DVC's confusion plot), and
    OUT/features.npz (the embeddings of a stratified test sample, for the t-SNE map).

    Each weight file also runs in the other framework; if the two frameworks predict differently on the
    same weights for more than 0.1 % of the images the stage fails. On any failure nothing is written.
    """
    with user_errors():
        params = load_params(params_path)
        train = params.train_for("numpy")
        spec = get_spec(train.model, train.width)
        states = {fw: load_state(models / f"{fw}.npz", spec, train.model) for fw in FRAMEWORKS}
        images, labels = load_test(prepared)
        rng = np.random.default_rng([train.seed, 3])
        result = evaluate(spec, states, images, labels, params.evaluate["feature_samples"], rng)
        with ExitStack() as stack:
            metrics_path = stack.enter_context(staged_file(out / "metrics.json"))
            metrics_path.write_text(json.dumps(result.metrics, indent=2) + "\n")
            for fw in FRAMEWORKS:
                csv_path = stack.enter_context(staged_file(out / f"confusion_{fw}.csv"))
                write_predictions(csv_path, labels, result.predictions[fw])
            with open(stack.enter_context(staged_file(out / "features.npz")), "wb") as file:
                np.savez(file, features=result.features, labels=result.feature_labels, index=result.sample)
    for fw in FRAMEWORKS:
        click.echo(f"evaluate: {fw} test accuracy {100 * result.metrics[fw]['test_acc']:.2f}% ({len(labels)} images)")
    agreement = 100 * result.metrics["cross"]["min_agreement"]
    click.echo(f"evaluate: on the same weights NumPy and PyTorch agree on {agreement:.2f}% of the images")


if __name__ == "__main__":
    main()
