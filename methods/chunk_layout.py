"""A tool's own chunk layout, declared in its config, so boundary metrics look at its real seams.

Schema (``method.chunk_layout``), output frame indices counted from the clip's first frame:

  {every: 12}             chunks of 12 frames (e.g. 8n+1 windows: {every: 33})
  {first: 9, every: 12}   a first chunk of 9 frames, then 12 each (InfVSR without scene cuts)
  {starts: [0, 40, 90]}   chunks starting exactly there ({starts: [0]}: the whole clip in one pass)

None (the default) means the layout is unknown: boundary metrics are then not applicable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class ChunkRule:
    """Chunk starts of a tool: periodic (``every``, after a ``first`` chunk) or listed (``starts``)."""

    every: int | None = None
    first: int | None = None
    starts: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.starts is None):
            raise ValueError("give either every (with an optional first) or starts")
        if self.starts is not None:
            if self.first is not None:
                raise ValueError("first goes with every, not with starts")
            if any(not _is_int(s) or s < 0 for s in self.starts) or list(self.starts) != sorted(set(self.starts)):
                raise ValueError(f"starts must be increasing frame indices >= 0, got {list(self.starts)}")
        for key in ("every", "first"):
            value = getattr(self, key)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{key} must be a whole number of frames >= 1, got {value!r}")

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None) -> ChunkRule | None:
        """The rule a config declares (None: undeclared); ValueError / TypeError say what is wrong in one line."""
        if options is None:
            return None
        if not isinstance(options, Mapping):
            raise TypeError(f"chunk_layout must be a mapping such as {{first: 9, every: 12}}, got {options!r}")
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"chunk_layout: unknown key(s) {unknown}; use every (+ first) or starts")
        starts = options.get("starts")
        if starts is not None and (isinstance(starts, (str, bytes)) or not hasattr(starts, "__iter__")):
            raise TypeError(f"chunk_layout: starts must be a list of frame indices, got {starts!r}")
        try:
            return cls(options.get("every"), options.get("first"), None if starts is None else tuple(starts))
        except ValueError as exc:
            raise ValueError(f"chunk_layout: {exc}") from None

    def chunk_starts(self, num_frames: int) -> list[int]:
        """Output frame indices where chunks start, in a clip of ``num_frames`` frames."""
        if self.starts is not None:
            return sorted({0, *(int(s) for s in self.starts if s < num_frames)}) if num_frames else []
        first, every = self.first or self.every, self.every
        return [0, *range(first, num_frames, every)] if num_frames else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
