"""Presets and ablation series as DVC experiments, and the tables that compare them.

``experiments.yaml`` holds the data: presets (parameter overrides that reproduce a report's system,
optionally with the DVC targets to run) and series (rows of overrides on a preset, each run with one
seed or several). DVC's own queue runs the rows and ``dvc exp show --json`` is read back into the
series table, with the mean and spread over the seeds of each row. One concern a module:

* :mod:`~lablib.experiments.config`: reading ``experiments.yaml`` into rows;
* :mod:`~lablib.experiments.store`: what DVC holds, read through ``dvc exp show`` and git;
* :mod:`~lablib.experiments.queue`: running rows on DVC's queue, keeping finished ones;
* :mod:`~lablib.experiments.cluster` and :mod:`~lablib.experiments.worker`: running them on a Dask cluster
  instead, each experiment a task in its own clone, back as a DVC experiment;
* :mod:`~lablib.experiments.tables`: the series tables, per seed and summarised over seeds;
* :mod:`~lablib.experiments.cli`: the command line, ``python -m lablib.experiments``.
"""
