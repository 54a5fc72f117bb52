"""Bounded stages for the pipelined runner: a thread that reads an iterator ahead (decoding) and a
thread that applies a function to each item (scoring, writing), each behind a bounded queue, so
memory stays flat whatever the clip length.

An error in a stage is raised in the caller at its next ``next()`` / ``put()`` / ``finish()``, as the
same exception, so a clip fails with the same reason as on one thread; leaving ``Stages`` stops and
joins every thread (no thread outlives its clip, no queue blocks forever). ``Stages(threaded=False)``
gives the same interface run inline: the sequential path.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")
_POLL = 0.05  # seconds between checks for a stop request while a queue is full
_END = object()


class _Prefetch(Generic[T]):
    """``source`` read by a thread, at most ``depth`` items ahead."""

    def __init__(self, source: Iterable[T], depth: int, name: str) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(iter(source),), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((True, item)):
                    return
            self._put((True, _END))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator is closed by the thread that runs it (releases its file)

    def _put(self, message: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "_Prefetch[T]":
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        ok, value = self._queue.get()
        if value is _END or not ok:
            self._done = True
        if not ok:
            raise value
        if value is _END:
            raise StopIteration
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _Inline(Generic[T]):
    """The sequential counterpart of ``_Prefetch``."""

    def __init__(self, source: Iterable[T]) -> None:
        self._items = iter(source)

    def __iter__(self) -> "_Inline[T]":
        return self

    def __next__(self) -> T:
        return next(self._items)

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


class Sink:
    """``fn(item)`` for each ``put`` item, in order, by a thread, at most ``depth`` items waiting."""

    def __init__(self, fn: Callable[[Any], None], depth: int, name: str) -> None:
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None and not self._cancelled:  # after a failure: drain, so put() never blocks
                try:
                    self._fn(item)
                except BaseException as exc:
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            self._cancelled = True
            error, self._error = self._error, None
            raise error

    def put(self, item: Any) -> None:
        """Queue ``item``; raises this stage's error, if it had one."""
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _end(self) -> None:
        if self._thread.is_alive():
            while True:
                try:
                    self._queue.put(_END, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            self._thread.join()

    def finish(self) -> None:
        """Wait until every item is done; raises this stage's error, if it had one."""
        self._raise()
        self._end()
        self._raise()

    def close(self) -> None:
        """Drop what is waiting and join the thread (after an error elsewhere)."""
        self._cancelled = True
        self._end()


class _InlineSink:
    """The sequential counterpart of ``Sink``."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.put = fn

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class Stages:
    """Creates stages, threaded or inline, and closes them all on leaving ``with``."""

    def __init__(self, threaded: bool) -> None:
        self.threaded = threaded
        self._open: list[Any] = []

    def prefetch(self, source: Iterable[T], depth: int, name: str) -> Iterator[T]:
        stage = _Prefetch(source, depth, name) if self.threaded else _Inline(source)
        self._open.append(stage)
        return stage

    def sink(self, fn: Callable[[Any], None], depth: int, name: str) -> Sink | _InlineSink:
        stage = Sink(fn, depth, name) if self.threaded else _InlineSink(fn)
        self._open.append(stage)
        return stage

    def __enter__(self) -> "Stages":
        return self

    def __exit__(self, *exc: Any) -> None:
        for stage in reversed(self._open):
            stage.close()
        self._open.clear()
