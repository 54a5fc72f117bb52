"""SIGTERM (``timeout``, a scheduler ending a job) unwinds the process as Ctrl-C does.

Python's default for SIGTERM ends the process on the spot: no ``finally`` runs, so an external
tool started in its own process group is left running and ``run.json`` keeps saying ``running``.
Under ``sigterm_unwinds()`` SIGTERM raises ``Terminated`` (a KeyboardInterrupt) in the main thread
instead, so every Ctrl-C path runs: the tool's group is ended, the clip in progress is dropped,
finished clips are kept and the record says ``interrupted``. Further SIGTERMs are ignored while the
process unwinds (SIGKILL still ends it).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind as for Ctrl-C, then exit 143 (128 + SIGTERM)."""


def _raise(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one unwinding; a repeat must not cut it short
    raise Terminated()


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread; the previous handler is
    put back after. Inside such a block already, or elsewhere than the main thread (which alone may
    set handlers), it changes nothing."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is _raise:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def stopped_by(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """What stopped us and the shell's exit code for it: ("SIGTERM", 143) or ("Ctrl-C", 130)."""
    if isinstance(interrupt, Terminated):
        return "SIGTERM", 128 + signal.SIGTERM
    return "Ctrl-C", 128 + signal.SIGINT
