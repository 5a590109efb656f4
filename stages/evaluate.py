"""Stages evaluate_numpy and evaluate_torch: one framework's model on the official test images."""

import importlib
from pathlib import Path

import click

from lablib.evaluate import evaluate, load_state, load_test, run_model, write_evaluation, write_not_run_evaluation
from lablib.models.specs import get_spec, missing_framework
from lablib.params import FRAMEWORKS, load_params
from lablib.rng import Stream, generator
from stages import RESTORE, user_errors

DirPath = click.Path(file_okay=False, path_type=Path)
# Each framework's forward pass, imported by name so that evaluate_numpy neither imports PyTorch nor
# depends on its files (tests/test_dvc_deps.py follows the entry of the stage's framework only).
PREDICT = {"numpy": "lablib.models.numpy_inference:predict", "torch": "lablib.models.torch_model:predict"}


@click.command()
@click.argument("framework", type=click.Choice(FRAMEWORKS))
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="Parameters file.")
@click.option("--prepared", default="data/prepared", show_default=True, type=DirPath)
@click.option("--models", default="models", show_default=True, type=DirPath, help="Holds FRAMEWORK.npz.")
@click.option("--out", default="evaluation", show_default=True, type=DirPath, help="Writes into OUT/FRAMEWORK/.")
def main(framework: str, params_path: str, prepared: Path, models: Path, out: Path) -> None:
    """Evaluate FRAMEWORK's model (numpy or torch), in that framework, on the test images and write
    OUT/FRAMEWORK/metrics.json, OUT/FRAMEWORK/confusion.csv (one actual,predicted row per image, for
    DVC's confusion plot) and OUT/FRAMEWORK/features.npz (the embeddings of a stratified test sample,
    for the t-SNE map). On any failure nothing is written. A model whose layers have no PyTorch twin
    evaluates in NumPy only: evaluate torch then writes the record that it did not run and why."""
    with user_errors(f"evaluate_{framework}", RESTORE.format(stage=f"evaluate_{framework}")):
        params = load_params(params_path)
        train = params.train_for(framework)
        if reason := missing_framework(framework, train.model, train.width):
            write_not_run_evaluation(out / framework, reason)
            click.echo(f"evaluate: {framework} not evaluated, {reason}; {out / framework} records it")
            return
        module, name = PREDICT[framework].split(":")
        predict = getattr(importlib.import_module(module), name)
        path = models / f"{framework}.npz"
        state = load_state(path)
        images, labels = load_test(prepared)
        features, logits = run_model(predict, get_spec(train.model, train.width), state, images, path, train.model)
        rng = generator(train.seed, Stream.TEST_SAMPLE)
        result = evaluate(features, logits, labels, params.evaluate["feature_samples"], rng)
        write_evaluation(out / framework, result, labels)
    click.echo(
        f"evaluate: {framework} test accuracy {100 * result.metrics['test_acc']:.2f}% ({len(labels)} images), "
        f"in {out / framework}"
    )


if __name__ == "__main__":
    main()
