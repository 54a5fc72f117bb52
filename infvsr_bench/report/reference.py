"""Numbers papers report, and the rule for where a leaderboard may show them.

Each reference table records its source (paper and table), how each of its metrics was computed
(the *protocol*: the short name of the reference implementation, the names metrics record as
``info()["protocol"]``; optionally the version of our metric that reproduces it) and what the
source leaves unknown.

Rule: a reported value stands beside a measured column only when that column measures the same
metric (registered name, not a derived column) with the same protocol and, where the reference
names one, the same metric version. A value whose protocol is unknown never stands beside a
measured column, whatever its likely protocol: it is shown apart, labelled "protocol unknown
(likely <protocol>)". Every value shown apart has its reason in the notes, like a version split.
Reported values are never ranked; a reported metric no selected column measures is left out (noted).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from infvsr_bench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ReportedMetric:
    """How a reference computed one metric."""

    higher_is_better: bool
    protocol: str | None = None  # None: the source does not say
    likely: str | None = None  # the best guess for an unknown protocol: a label, never used to match
    version: str | None = None  # our metric version that reproduces ``protocol``; None: any version of it

    @property
    def protocol_text(self) -> str:
        """``dove``, or ``unknown (likely dove)``."""
        if self.protocol:
            return self.protocol
        return f"unknown (likely {self.likely})" if self.likely else "unknown"

    @property
    def label(self) -> str:
        return f"protocol {self.protocol_text}"


@dataclasses.dataclass(frozen=True)
class ReferenceTable:
    """One published table: its row label, source, metrics (our registered names) and values."""

    row: str
    source: str
    metrics: dict[str, ReportedMetric]
    values: dict[str, dict[str, float]]  # dataset -> metric -> value
    unknown: tuple[str, ...] = ()


INFVSR_TABLE1 = ReferenceTable(
    row="InfVSR (reported)",
    source="InfVSR paper (arXiv 2510.00948), Table 1",
    metrics={
        "psnr": ReportedMetric(True, likely="dove"), "ssim": ReportedMetric(True, likely="dove"),
        "lpips": ReportedMetric(False, likely="pyiqa"), "dists": ReportedMetric(False, likely="pyiqa"),
        "musiq": ReportedMetric(True, likely="pyiqa"), "clipiqa": ReportedMetric(True, likely="pyiqa"),
        "dover": ReportedMetric(True, likely="dover_official"), "ewarp": ReportedMetric(False, likely="evalcrafter"),
    },
    values={
        "udm10": {"psnr": 24.86, "ssim": 0.7274, "lpips": 0.2972, "dists": 0.1422, "musiq": 62.88,
                  "clipiqa": 0.5142, "dover": 0.7826, "ewarp": 1.95},
        "spmcs": {"psnr": 22.25, "ssim": 0.5697, "lpips": 0.3166, "dists": 0.1742, "musiq": 67.75,
                  "clipiqa": 0.5319, "dover": 0.7302, "ewarp": 1.25},
        "mvsr4x": {"psnr": 22.49, "ssim": 0.7373, "lpips": 0.3452, "dists": 0.2107, "musiq": 64.03,
                   "clipiqa": 0.5229, "dover": 0.6872, "ewarp": 1.03},
        "videolq": {"musiq": 56.26, "clipiqa": 0.4454, "dover": 0.7556, "ewarp": 7.52},
        "movielq": {"musiq": 68.65, "clipiqa": 0.5888, "dover": 0.8447, "ewarp": 2.88},
    },
    unknown=(
        ("the evaluation script: not stated anywhere public; DOVE's eval_metrics.py (the InfVSR group's, "
         "pyiqa defaults: PSNR on RGB, SSIM on rounded YIQ luma, crop 0) is the likely one, with or without "
         "--test_y_channel (dove_y)"),
        "E*warp: likely DOVE's eval_ewarp.py with EvalCrafter's RAFT input scaling (evalcrafter), x10^-3",
        "DOVER: likely the official whole-video sampling (dover_official)",
        "whether outputs were scored after the official inference's libx264 yuv420p encode (likely)",
        "metric library versions",
    ),
)

REFERENCES: dict[str, tuple[ReferenceTable, ...]] = {"infvsr_paper": (INFVSR_TABLE1,)}


@dataclasses.dataclass
class Placement:
    """Where a reference's values go: beside matching columns, or apart with the reason."""

    beside: pd.DataFrame  # method, dataset, metric (the measured column), value
    apart: pd.DataFrame  # method, dataset, metric (the reported metric's name), value
    apart_higher_is_better: dict[str, bool]  # reported metric name -> direction
    apart_protocols: dict[str, dict[str, str]]  # row -> reported metric name -> its protocol, as text
    notes: list[str]


def mismatch(name: str, reported: ReportedMetric, column: str, info: dict[str, Any]) -> str | None:
    """Why a reported value may not stand beside ``column`` (None when it may)."""
    if reported.protocol is None:
        return reported.label
    protocol = info.get("protocol")
    if protocol != reported.protocol:
        mine = f"protocol {protocol}" if protocol else "no recorded protocol"
        return f"column '{column}' has {mine}, the reference protocol {reported.protocol}"
    if reported.version and info.get("version") != reported.version:
        return f"column '{column}' is {name} version {info.get('version')}, the reference's protocol is version {reported.version}"
    return None


LONG = ["method", "dataset", "metric", "value"]


def place(reference: str, columns: dict[str, dict[str, Any]], datasets: list[str]) -> Placement:
    """Apply the module's rule to the reference tables named ``reference``, for the selected measured
    ``columns`` (column -> metric info) and the report's datasets."""
    if reference not in REFERENCES:
        raise ConfigError(f"unknown reference {reference!r}; available: {sorted(REFERENCES)}")
    measures: dict[str, list[str]] = {}  # metric name -> the selected columns that measure it
    for column, info in columns.items():
        if "parent" not in info:
            measures.setdefault(info.get("metric", column), []).append(column)
    beside, apart, notes, directions, protocols = [], [], [], {}, {}
    for table in REFERENCES[reference]:
        shared = [d for d in table.values if d in datasets]
        if not shared:
            notes.append(f"{table.row}, {table.source}, reports {', '.join(table.values)}; none is in this report")
            continue
        why: dict[str, list[str]] = {}
        placed: dict[str, list[str]] = {}
        for name, reported in table.metrics.items():
            candidates = measures.get(name, [])
            reasons = {c: mismatch(name, reported, c, columns[c]) for c in candidates}
            matched = [c for c, r in reasons.items() if r is None]
            for dataset in shared:
                value = table.values[dataset].get(name)
                if value is None or not candidates:
                    continue
                if matched:
                    beside += [(table.row, dataset, c, value) for c in matched]
                else:
                    apart.append((table.row, dataset, name, value))
                    directions[name] = reported.higher_is_better
                    protocols.setdefault(table.row, {})[name] = reported.protocol_text
            if not candidates:
                why.setdefault("no selected column measures it", []).append(name)
            elif matched:
                others = "; ".join(r for r in reasons.values() if r is not None)
                where = f"'{', '.join(matched)}' (same protocol" + (f"; not beside the others: {others})" if others else ")")
                placed.setdefault(where, []).append(name)
            else:
                why.setdefault("; ".join(dict.fromkeys(reasons.values())), []).append(name)
        parts = [f"{', '.join(ms)} beside {where}" for where, ms in placed.items()]
        parts += [f"{', '.join(ms)} {'left out' if r.startswith('no selected') else 'shown apart'}: {r}"
                  for r, ms in why.items()]
        notes.append(f"{table.row}, {table.source}: " + "; ".join(parts)
                     + (f". Unknown: {'; '.join(table.unknown)}" if table.unknown else ""))
    return Placement(pd.DataFrame(beside, columns=LONG), pd.DataFrame(apart, columns=LONG), directions, protocols,
                     notes)
