"""Stage preprocess: images to float32 (N, 1, 28, 28) in [-0.5, 0.5], labels to int64, as .npy."""

from pathlib import Path

import click
import numpy as np

from lablib.data.fashion_mnist import TEST_IMAGES, TEST_LABELS
from lablib.data.idx import load_images, load_split
from lablib.data.preprocess import UNKNOWN_LABEL, save_arrays, to_tensor
from stages import user_errors


@click.command()
@click.option("--raw", default="data/raw", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--split", "split_dir", default="data/split", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--out", default="data/prepared", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def main(raw: Path, split_dir: Path, out: Path) -> None:
    """Write {train,val,test}_{images,labels}.npy into OUT; later stages memory-map them. Test labels
    that fetch could not know (the course's test file alone) are written as -1."""
    with user_errors("preprocess", f"to restore the previous arrays: dvc checkout {out}"):
        images, labels = load_split(raw / "train-images-idx3-ubyte.gz", raw / "train-labels-idx1-ubyte.gz")
        if (raw / TEST_LABELS).exists():
            test_images, test_labels = load_split(raw / TEST_IMAGES, raw / TEST_LABELS)
        else:  # the course's test file, with no official files to label it
            test_images = load_images(raw / TEST_IMAGES)
            test_labels = np.full(len(test_images), UNKNOWN_LABEL)
        arrays = {}
        for name in ("train", "val"):
            index = np.load(split_dir / f"{name}.npy")
            arrays[f"{name}_images"] = to_tensor(images[index])
            arrays[f"{name}_labels"] = labels[index].astype(np.int64)
        arrays["test_images"] = to_tensor(test_images)
        arrays["test_labels"] = test_labels.astype(np.int64)
        save_arrays(out, arrays)
    sizes = ", ".join(f"{name} {len(arrays[name + '_labels'])}" for name in ("train", "val", "test"))
    click.echo(f"preprocess: {sizes} written to {out}")


if __name__ == "__main__":
    main()
