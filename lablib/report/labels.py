"""The names the report gives the run's choices (frameworks, optimisers, validation schemes, data sources).

Plain data without matplotlib, so that the text and the tables need not import the figures for a name.
"""

FRAMEWORK_LABELS = {"numpy": "NumPy", "torch": "PyTorch"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
VALIDATION_MEASURES = {"holdout": "hold-out", "kfold": "k-fold (best fold)", "rotating": "rotating fold"}
SOURCES = {
    "source_dir": "the folder named by data.source_dir",
    "folder": "a folder named by the user",
    "env": "the folder named by $FASHION_MNIST_DIR",
    "debian": "Debian's package dataset-fashion-mnist",
    "download": "the official download",
    "course_csv": "the course's CSV files",
}
