"""Memory accounting per component: what the method (or the metrics) holds and peaks at, counted only
inside that component's own calls, so one column never includes another's models or state.

On Linux the process's peak resident size (VmHWM) is reset before each call (``/proc/self/clear_refs``),
so a call's transient peak is measured exactly; elsewhere only call boundaries are seen (``probe``
says which). CUDA uses the caching allocator's counters (``memory_allocated``, reset peaks). Both are
process-wide, so windows are exclusive: one thread's window waits for another's to end, and no
component's calls run inside another's window (the pipelined runner relies on this). Memory freed inside
a window is taken off that component, so nothing else may free memory there: ``settle`` collects the
garbage others left before a clip, and automatic garbage collection is off inside windows.
"""

from __future__ import annotations

import gc
import re
import threading
from pathlib import Path
from typing import Any

import torch

MIB = 2.0**20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> float | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return float(match.group(1)) if match else None


def _can_reset_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


PROBE = "vmhwm" if _can_reset_peak() else "call_boundaries"
_WINDOW = threading.RLock()  # held for the whole of a ``with account:`` window


class _Process:
    """Whole-process peaks that survive the per-call resets."""

    rss_mib: float = 0.0
    cuda_mib: float = 0.0


def current_rss_mib() -> float:
    """Resident memory of this process now."""
    kib = _status_kib("VmRSS")
    if kib is None:
        import psutil

        return psutil.Process().memory_info().rss / MIB
    return kib / 1024.0


def _hwm_mib() -> float:
    kib = _status_kib("VmHWM")
    return current_rss_mib() if kib is None else kib / 1024.0


def _reset_rss_peak() -> None:
    _Process.rss_mib = max(_Process.rss_mib, _hwm_mib())
    if PROBE == "vmhwm":
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")


def process_peak_rss_mib() -> float:
    """Peak resident memory of the whole process since it started (every component together)."""
    return max(_Process.rss_mib, _hwm_mib())


def process_peak_cuda_mib(device: torch.device) -> float | None:
    """Peak CUDA memory allocated on ``device`` by the whole process (None on the CPU)."""
    if device.type != "cuda":
        return None
    return max(_Process.cuda_mib, torch.cuda.max_memory_allocated(device) / MIB)


def settle() -> None:
    """Free the garbage others left in reference cycles, before a clip's first window (else a collection
    inside a component's call would take that memory off the component)."""
    gc.collect()


class MemoryAccount:
    """Resident and peak memory of one component, counted inside ``with account:`` blocks only.

    ``resident`` is what the component kept across its calls so far (weights, caches); a call's
    peak is that plus the call's own rise above the memory in use when it began.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.resident_rss = self.resident_cuda = 0.0
        self.peak_rss = self.peak_cuda = 0.0
        self._rss0 = self._cuda0 = 0.0
        self._gc_enabled: list[bool] = []  # automatic collection's state before each open window

    def settle_on(self, device: torch.device) -> None:
        """Count CUDA memory on ``device`` from now on (the component was built before its device was known)."""
        device = torch.device(device)
        if (device.type, device.index or 0) != (self.device.type, self.device.index or 0):
            self.device = device
            self.resident_cuda = self.peak_cuda = 0.0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def start_clip(self) -> None:
        """Begin a new clip's peak (what the component already holds counts from the start)."""
        self.peak_rss, self.peak_cuda = max(self.resident_rss, 0.0), max(self.resident_cuda, 0.0)

    def __enter__(self) -> "MemoryAccount":
        _WINDOW.acquire()
        self._gc_enabled.append(gc.isenabled())
        gc.disable()  # a collection here would free others' garbage inside this component's window
        try:
            self._open_window()
        except BaseException:
            self._end_window()
            raise
        return self

    def _end_window(self) -> None:
        if self._gc_enabled.pop():
            gc.enable()
        _WINDOW.release()

    def _open_window(self) -> None:
        _reset_rss_peak()
        self._rss0 = current_rss_mib()
        if self.cuda:
            _Process.cuda_mib = max(_Process.cuda_mib, torch.cuda.max_memory_allocated(self.device) / MIB)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._cuda0 = torch.cuda.memory_allocated(self.device) / MIB

    def __exit__(self, *exc: Any) -> None:
        try:
            self._close_window()
        finally:
            self._end_window()

    def _close_window(self) -> None:
        rss1 = current_rss_mib()
        peak = _hwm_mib() if PROBE == "vmhwm" else max(rss1, self._rss0)
        self.peak_rss = max(self.peak_rss, self.resident_rss + peak - self._rss0)
        self.resident_rss += rss1 - self._rss0
        if self.cuda:
            cuda1 = torch.cuda.memory_allocated(self.device) / MIB
            cuda_peak = torch.cuda.max_memory_allocated(self.device) / MIB
            self.peak_cuda = max(self.peak_cuda, self.resident_cuda + cuda_peak - self._cuda0)
            self.resident_cuda += cuda1 - self._cuda0

    def clip_columns(self, prefix: str) -> dict[str, float | None]:
        """``<prefix>_peak_rss_mib`` and ``<prefix>_peak_cuda_mib`` (None on the CPU) for a clip row."""
        return {f"{prefix}_peak_rss_mib": self.peak_rss,
                f"{prefix}_peak_cuda_mib": self.peak_cuda if self.cuda else None}
