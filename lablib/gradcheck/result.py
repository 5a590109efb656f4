"""What a check found, one type for every mode: its comparisons, notes and verdict, and the same in JSON.

A layer check and a network check both end in a :class:`Check`; class mode runs each check in a child
process, which writes its ``Check`` with :meth:`Check.to_json`, and reads it back with
:meth:`Check.from_json` into the class table's row (:meth:`Check.summary`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

PASSING = ("ok", "differs", "zero", "not a gradient", "guarded")  # verdicts that pass; the other is FAIL


@dataclass
class Comparison:
    """One tensor against its reference: the largest error, absolute and relative to the reference's scale.

    A layer's comparison is on one input (``input_shape``); a network's on sampled entries
    (``entries``) of one of its ``layer``'s tensors, ``through`` the whole network, the layer's own
    backward, a loss layer's own, or the PyTorch twin.
    """

    tensor: str
    against: str
    max_abs: float
    max_rel: float
    verdict: str  # ok or FAIL; differs (a buffer), zero (exact, as the differences find), not a gradient,
    # guarded (finite differences off by what an epsilon guard in the forward explains)
    where: str = ""  # where the two differ most, or how their shapes differ
    diagnosis: str = ""  # why a failing tensor is wrong, in words (lablib.gradcheck.diagnosis)
    note: str = ""  # why a passing comparison is not plain: a buffer's convention, entries at a kink
    input_shape: tuple[int, ...] = ()
    layer: str = ""
    through: str = ""  # a network's: network (d loss), layer (d sum(output * g)), loss or twin
    entries: int = 0

    @property
    def passed(self) -> bool:
        return self.verdict in PASSING

    @property
    def comparable(self) -> bool:
        """False when the shapes differ or a value is NaN: no error can be measured."""
        return not np.isnan(self.max_abs)


@dataclass
class Check:
    """One check's comparisons, notes and skipped inputs, or why it did not run (``failure``, ``reason``)."""

    kind: str = "layer"  # "layer" or "network": which comparison the verdict names first
    name: str = ""  # the layer's class, as the class table names it (a network's comparisons name their layers)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the layer was read: attributes, layout, dtype
    skipped: list[str] = field(default_factory=list)
    failure: str = ""  # "error" or "timeout": the check did not run
    reason: str = ""  # why it did not run, or why it failed where no comparison says (the student's code raised)

    @property
    def passed(self) -> bool:
        return not self.failure and bool(self.comparisons) and all(c.passed for c in self.comparisons)

    @property
    def verdict(self) -> str:
        """ok, FAIL, or the failure: error, timeout."""
        return self.failure or ("ok" if self.passed else "FAIL")

    def worst(self) -> Comparison | None:
        """The comparison to name first.

        A network's: a layer's own backward before what the network inherits from it, a gradient that
        cannot be measured (missing, or of the wrong shape) before the largest error. A layer's: the
        largest error measured, failing ones first.
        """
        failing = [c for c in self.comparisons if not c.passed]
        if self.kind == "network":
            pool = [c for c in failing if c.through != "network"] or failing or self.comparisons
            return max(pool, key=lambda c: np.inf if np.isnan(c.max_rel) else c.max_rel, default=None)
        pool = failing or [c for c in self.comparisons if c.comparable]
        return max(pool, key=lambda c: (c.comparable, c.max_rel), default=None)

    def summary(self) -> dict[str, str]:
        """The class table's row: the verdict, the worst error, the layer and tensor it is in, the reason (why the
        check did not run, or the worst failing tensor's diagnosis)."""
        worst = self.worst()
        error = "" if worst is None or not worst.comparable else f"{worst.max_rel:.1e}"
        if worst is None:
            layer, tensor = ("", "") if self.kind == "network" else (self.name, "")
        elif self.kind == "network":
            layer, tensor = worst.layer, worst.tensor
        else:
            layer, tensor = self.name, f"{worst.tensor} vs {worst.against}"
        reason = self.reason or (worst.diagnosis if worst is not None and not worst.passed else "")
        return {"verdict": self.verdict, "worst_error": error, "layer": layer, "tensor": tensor, "reason": reason}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Check:
        """The ``Check`` that :meth:`to_json` wrote."""
        data = json.loads(text)
        comparisons = [Comparison(**{**c, "input_shape": tuple(c["input_shape"])}) for c in data.pop("comparisons")]
        return cls(**data, comparisons=comparisons)
