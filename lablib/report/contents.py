"""The report's figures and tables in the order they appear: the one list their numbers come from.

A figure's number is its position among the figures present in a report, a table's among the tables.
Captions and cross-references ask :class:`Numbering` for the number by key, so adding an entry here,
or a report without an optional one (or without what a framework that did not run would have made),
renumbers every caption and every reference at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A figure (drawn to ``figures/<key>.png``) or a table of the report."""

    kind: str
    key: str
    optional: bool = False

    @property
    def file(self) -> str:
        return f"{self.key}.png"


CONTENTS: tuple[Entry, ...] = (
    Entry("Table", "results"),
    Entry("Figure", "samples"),
    Entry("Figure", "augmentation"),
    Entry("Table", "layers"),
    Entry("Figure", "lr_schedule"),
    Entry("Figure", "curves"),
    Entry("Figure", "confusion_numpy"),
    Entry("Figure", "confusion_torch", optional=True),
    Entry("Figure", "misclassified"),
    Entry("Table", "per_class"),
    Entry("Table", "confusions"),
    Entry("Figure", "tsne"),
    Entry("Table", "cross"),
    Entry("Table", "report000"),
    Entry("Table", "report001", optional=True),
    Entry("Table", "report001_noise", optional=True),
    Entry("Table", "parameters"),
)
FIGURES = {entry.key: entry.file for entry in CONTENTS if entry.kind == "Figure"}


class Numbering:
    """The number of each entry of ``contents`` that is present: every entry that is not optional,
    and the optional ones named in ``included``, less those named in ``excluded`` (what a framework or
    stage that did not run would have made)."""

    def __init__(
        self, included: Iterable[str] = (), contents: Sequence[Entry] = CONTENTS, excluded: Iterable[str] = ()
    ) -> None:
        included, excluded = set(included), set(excluded)
        counts: Counter[str] = Counter()
        self.labels: dict[str, str] = {}
        for entry in contents:
            if (not entry.optional or entry.key in included) and entry.key not in excluded:
                counts[entry.kind] += 1
                self.labels[entry.key] = f"{entry.kind} {counts[entry.kind]}"
        self.files = {entry.key: entry.file for entry in contents if entry.kind == "Figure"}

    def __getitem__(self, key: str) -> str:
        """``Figure 3`` or ``Table 2``: the label to cite entry ``key`` by."""
        return self.labels[key]

    def figure(self, key: str, caption: str) -> str:
        """The image and its numbered caption."""
        label = self.labels[key]
        return f"![{label}: {caption}](figures/{self.files[key]})\n\n*{label}: {caption}*"

    def table(self, key: str, caption: str, body: str) -> str:
        """The numbered caption, then the Markdown table."""
        return f"*{self.labels[key]}: {caption}*\n\n{body}"
