"""One figure of a report: its files (PNG, PDF, and the plotted data as CSV) and its caption."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Figure:
    """What the report page shows for one figure; file names are relative to the report folder."""

    name: str  # file stem shared by the PNG, PDF and CSV
    title: str
    caption: str  # what is drawn, over which clips/frames, and what is left out
    files: tuple[str, ...]  # <name>.png, <name>.pdf, <name>.csv

    @property
    def png(self) -> str:
        return f"{self.name}.png"

    @property
    def csv(self) -> str:
        return f"{self.name}.csv"
