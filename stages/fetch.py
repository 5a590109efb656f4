"""Stage fetch: put the four official Fashion-MNIST files, verified, in data/raw/."""

from pathlib import Path

import click

from lablib.data.fetch import fetch
from lablib.params import load_params
from stages import user_errors


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--out", default="data/raw", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def main(params_path: str, out: Path) -> None:
    """Copy the official files into OUT from data.source_dir, $FASHION_MNIST_DIR, Debian's
    dataset-fashion-mnist or the official download, in that order, after checking each file's
    SHA-256 against the published one. OUT is left as it was when any check fails."""
    with user_errors("fetch", f"to restore the previous files: dvc checkout {out}"):
        params = load_params(params_path)
        source_dir = Path(params.data.source_dir) if params.data.source_dir else None
        result = fetch(out, source_dir)
    click.echo(f"fetch: {len(result.sha256)} files verified from {result.source} into {out}")


if __name__ == "__main__":
    main()
