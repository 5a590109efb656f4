"""The report's glossary: the terms of the pipeline, the experiments and the training, each in a sentence."""

from __future__ import annotations

from lablib.report.comparison import Z
from lablib.report.markdown import Section

TERMS = {
    "DVC": "Data Version Control: runs the pipeline's stages (`dvc.yaml`), reruns only those whose inputs "
    "changed, and keeps each run's parameters and metrics beside the code (`dvc exp` for experiments).",
    "Stage": "one step of the pipeline (fetch, split, preprocess, train, evaluate, compare, predict, report), "
    "a command with declared inputs and outputs.",
    "Preset": "a named set of `params.yaml` overrides in `experiments.yaml`, such as `lab2025` (report 000's "
    "settings) or `lab2023` (report 001's).",
    "Series": "rows of overrides on one preset, each run as a DVC experiment, optionally over several seeds, "
    "and tabled in `reports/experiments/`.",
    "Seed": "the one number that draws the hold-out, the initial weights, the batches and the augmentation.",
    "Stratified hold-out": "validation images drawn from the training images with every class equally "
    "represented, never trained on.",
    "Rotating fold": "report 001's K-fold: the training images split into K folds, and each epoch validates on "
    "the next fold while training on the others, so every fold is trained on in the other epochs.",
    "One-cycle": "a learning-rate schedule that rises to its peak over the first part of training, then anneals "
    "to nearly zero, stepped after every batch.",
    "Center loss": "a second loss (Wen et al. 2016) pulling each image's features towards a learnt centre of "
    "its class.",
    "Label smoothing": "training against targets that put 1 - ε + ε/K on the true class and ε/K on each other "
    "one (K classes), which keeps the model from growing over-confident.",
    "Random erasing": "an augmentation (Zhong et al. 2017) that fills a random rectangle of the image with noise.",
    "t-SNE": "a map of high-dimensional vectors onto the plane that keeps neighbours near each other; distances "
    "between far-apart groups mean little.",
    "im2col": "copying every receptive field of a convolution into a column, so that the convolution becomes "
    "one matrix product.",
    "Not distinguishable": f"a difference smaller than {Z:g} standard deviations of all the noise it carries: "
    "our mean's, the other run's own seed noise and the sampling of the images it was measured on.",
}


def glossary_section() -> Section:
    """The glossary, one line a term, alphabetically."""
    lines = [f"- **{term}**: {text}" for term, text in sorted(TERMS.items(), key=lambda item: item[0].lower())]
    return Section("Glossary", ["\n".join(lines)], numbered=False)
