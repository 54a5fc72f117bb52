"""What a leaderboard column ranks: its direction and ideal, for metric columns and for the scalar
columns a metric derives beside its own.

A metric declares its derived columns in ``info()["columns"]`` ({name: {"higher_is_better": bool,
"ideal": float | None}}, in display order). Records written before such a declaration fall back to
``FALLBACK_DERIVED``, for semantic metrics only, on the columns their clip tables hold.

An *ideal* is the best value that still means something: every value past it, in the better
direction, ranks as the ideal (ties). The semantic drift family's derived columns:
``<col>_fidelity`` (similarity to GT features) higher is better; ``<col>_fidelity_slope`` (per 1,000
frames) higher is better with ideal 0, since a negative slope is drift and a positive one is no
drift (a slow start the fidelity mean already counts); ``<col>_boundary`` (chunk-boundary change
over inside-chunk change) lower is better with ideal 1, since 1 means invisible seams and a ratio
below 1 is no more invisible than 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pandas as pd


@dataclasses.dataclass(frozen=True)
class Direction:
    """Which way a column is better, and its ideal (None: none)."""

    higher_is_better: bool = True
    ideal: float | None = None

    @classmethod
    def of(cls, info: dict[str, Any]) -> Direction:
        return cls(bool(info.get("higher_is_better", True)), info.get("ideal"))

    def rank_key(self, values: pd.Series) -> pd.Series:
        """Values to rank by, larger is better: past the ideal counts as the ideal."""
        if self.ideal is not None:
            values = values.clip(upper=self.ideal) if self.higher_is_better else values.clip(lower=self.ideal)
        return values if self.higher_is_better else -values


# Suffix (appended to the metric's column) -> direction, for semantic records without a declaration.
FALLBACK_DERIVED: dict[str, Direction] = {
    "_fidelity": Direction(True),
    "_fidelity_slope": Direction(True, 0.0),
    "_boundary": Direction(False, 1.0),
}


def derived_columns(info: dict[str, Any], present: Iterable[str]) -> dict[str, Direction]:
    """The derived columns of one metric record (declared, else the fallback among ``present``)."""
    declared = info.get("columns")
    if declared is not None:
        return {name: Direction(bool(d["higher_is_better"]), d.get("ideal")) for name, d in declared.items()}
    if info.get("kind") != "semantic":
        return {}
    present = set(present)
    return {info["column"] + s: d for s, d in FALLBACK_DERIVED.items() if info["column"] + s in present}


def derived_info(info: dict[str, Any], column: str, parent: str, direction: Direction) -> dict[str, Any]:
    """The catalogue entry of derived ``column`` of ``parent``: the parent's record (name, version,
    settings, protocol), its own direction and ideal."""
    base = {k: v for k, v in info.items() if k != "columns"}
    return {**base, "column": column, "parent": parent, "higher_is_better": direction.higher_is_better,
            "ideal": direction.ideal}
