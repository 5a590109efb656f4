"""Stage split: the hold-out (stratified, or the course's last 10,000 rows), the K-fold assignment and the subset."""

from pathlib import Path

import click
import numpy as np

from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.data.idx import load_labels
from lablib.data.preprocess import save_arrays
from lablib.data.split import make_split
from lablib.params import load_params
from stages import user_errors


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--raw", default="data/raw", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", default="data/split", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def main(params_path: str, raw: Path, out: Path) -> None:
    """Write train.npy and val.npy (indices into the 60,000 training images) and folds.npy (the fold of
    each image of train + val) into OUT. The same seed gives the same files everywhere."""
    with user_errors("split", f"to restore the previous split: dvc checkout {out}"):
        params = load_params(params_path)
        labels = load_labels(raw / "train-labels-idx1-ubyte.gz")
        split = make_split(
            labels,
            val_per_class=params.data.val_per_class,
            subset=params.data.subset,
            kfold=params.data.kfold,
            seed=params.train.seed,
            method=params.data.split,
        )
        save_arrays(out, split)
    counts = {name: np.bincount(labels[split[name]], minlength=NUM_CLASSES).tolist() for name in ("train", "val")}
    click.echo(f"split: train {len(split['train'])} {counts['train']}, val {len(split['val'])} {counts['val']}")


if __name__ == "__main__":
    main()
