"""Stage fetch: put Fashion-MNIST, verified, in data/raw/: the four official files, or the course's CSV files."""

from pathlib import Path

import click

from lablib.data.fetch import fetch, fetch_course
from lablib.params import load_params
from stages import user_errors


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--out", default="data/raw", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def main(params_path: str, out: Path) -> None:
    """Copy the official files into OUT from data.source_dir, $FASHION_MNIST_DIR, Debian's
    dataset-fashion-mnist or the official download, in that order, after checking each file's
    SHA-256 against the published one. With data.train_csv and data.test_csv, verify the course's CSV
    files instead and write them in the official format, the test labels taken from the official test
    images where a folder holds them. OUT is left as it was when any check fails."""
    with user_errors("fetch", f"to restore the previous files: dvc checkout {out}"):
        params = load_params(params_path)
        data = params.data
        source_dir = Path(data.source_dir) if data.source_dir else None
        if data.train_csv is None:
            result = fetch(out, source_dir)
        else:
            result = fetch_course(out, Path(data.train_csv), Path(data.test_csv), source_dir)
    labels = "" if result.test_labels == "official" else "; the test labels are unknown"
    click.echo(f"fetch: {len(result.sha256)} files verified from {result.source} into {out}{labels}")


if __name__ == "__main__":
    main()
