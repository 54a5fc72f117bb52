"""One generic name -> implementation registry with lazy 'module:attr' entries and 'did you mean'."""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Generic, Iterable, TypeVar

from infvsr_bench.errors import UnknownNameError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short hint naming the closest choices, or listing them all when nothing is close."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "available: " + ", ".join(choices)


class Registry(Generic[T]):
    """Maps names to objects or to lazy 'package.module:attr' strings imported on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; {did_you_mean(name, self._entries)}")
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target


class PairedRegistry(Generic[T]):
    """Components and each one's options dataclass, registered together as lazy 'module:attr' strings: the
    options' module imports no torch, so the CLI stores their defaults for the configs to start from
    (``config.store_defaults``) without loading any component."""

    def __init__(self, kind: str, options: str) -> None:
        self.classes: Registry[T] = Registry(kind)
        self.options: Registry[type] = Registry(f"{kind} {options}")

    def register(self, name: str, component: str, options: str) -> None:
        """Register ``name``: its class and that class's options dataclass, each as 'module:Class'."""
        self.classes.register(name, component)
        self.options.register(name, options)
