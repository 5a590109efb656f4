"""The generated report: every figure and table of the two course reports, from the run just made.

- ``inputs``: reading the run (parameters, DVCLive logs, evaluation, provenance, the reports' own figures);
- ``analysis``: the t-SNE map of the features and their nearest neighbours; ``curves``: what the training
  curves show; ``mistakes``: the test set's mistakes and whether the twins made the same;
- ``comparison``: a published figure or gain against our spread over seeds, with every noise we can name;
- ``figures``: the plots; ``tables``: the Markdown tables; ``text``: the sections around them, with
  ``course`` the section beside the course reports, ``series`` each experiment series read (``ablation``
  report 000's against its claims, ``series_tables`` what a series' table says of a row), ``numpy_core``
  how the NumPy network is written and ``glossary`` its terms;
- ``labels``: the names shown for frameworks, optimisers and sources; ``prose``: numbers in words;
  ``settings``: the run's settings in words; ``markdown``: sections and their numbered headings;
- ``contents``: the one ordered list of figures and tables their numbers come from;
- ``write``: :func:`write_report` replaces ``report.md`` and ``figures/`` once everything is produced.
"""

from lablib.report.contents import FIGURES
from lablib.report.errors import ReportError
from lablib.report.inputs import RunPaths, load_run
from lablib.report.write import write_report

__all__ = ["FIGURES", "ReportError", "RunPaths", "load_run", "write_report"]
