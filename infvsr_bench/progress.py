"""Progress for a person and for a log: a tqdm bar when stderr is a terminal; otherwise (a scheduler's
log file, a pipe) a line when a task starts, one at most every ``EVERY_S`` seconds while it runs and
one when it ends, never a line per bar refresh (thousands in a log)."""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")
EVERY_S = 60.0  # seconds between a long task's lines in a log


class Lines:
    """The part of tqdm's interface the suite uses (iterate, ``update``, ``set_postfix``, a with
    block, ``close``), written as whole lines to stderr."""

    def __init__(self, iterable: Iterable[T] | None, total: int | None, desc: str, unit: str,
                 initial: int = 0, every_s: float = EVERY_S) -> None:
        self.iterable, self.desc, self.unit, self.every_s = iterable, desc, unit, every_s
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total  # type: ignore[arg-type]
        self.n = self._first = initial
        self.postfix = ""
        self._began = self._last = time.monotonic()
        self._closed = False
        size = "" if self.total is None else f", {self.total} {unit}s"
        self._write(f"started{size}" + (f" at {initial}" if initial else ""))

    def _write(self, text: str) -> None:
        print(f"{self.desc}: {text}{self.postfix}", file=sys.stderr, flush=True)

    def _status(self, now: float) -> str:
        count = f"{self.n}" if self.total is None else f"{self.n}/{self.total}"
        seconds = now - self._began
        rate = (self.n - self._first) / seconds if seconds > 0 else float("inf")
        return f"{count} {self.unit}s in {seconds:.1f} s, {rate:.2f} {self.unit}/s"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._write(self._status(now))

    def set_postfix(self, values: dict[str, Any], refresh: bool = False) -> None:
        self.postfix = " (" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write(self._status(time.monotonic()))

    def __iter__(self) -> Iterator[T]:
        try:
            for item in self.iterable:  # type: ignore[union-attr]
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool = True, initial: int = 0, leave: bool = True) -> Any:
    """A tqdm bar on a terminal, else :class:`Lines`; nothing when not ``enabled`` (tqdm's pass-through)."""
    if not enabled or sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True,
                    disable=not enabled)
    return Lines(iterable, total, desc, unit, initial)
