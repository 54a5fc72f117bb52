"""The weights vocabulary: what the learned numbers behind a result are (``WeightsKind``, recorded) and what a
user may ask for (a ``weights:`` option, ``WEIGHTS_CHOICES``), one word list for metrics and methods alike."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from infvsr_bench.errors import ConfigError


class WeightsKind(str, Enum):
    """Where the learned numbers behind a result come from; recorded with every method and metric.

    NONE: no learned weights (PSNR, bicubic). PRETRAINED: published pretrained files, checksummed.
    SHIPPED: pretrained numbers that an installed package ships (NIQE's parameters, EfficientNet-Lite0).
    RANDOM: seeded random weights (tests): flagged in results, refused by leaderboards.
    TINY: a reduced model (tests, smoke runs): labelled ``-tiny`` in reports.
    EXTERNAL: produced by a tool outside our control (precomputed outputs, a command-line tool),
    so we cannot checksum its weights.
    """

    NONE = "none"
    PRETRAINED = "pretrained"
    SHIPPED = "shipped"
    RANDOM = "random"
    TINY = "tiny"
    EXTERNAL = "external"

    def __str__(self) -> str:
        return self.value


# What a ``weights:`` option may say; each component takes the ones that apply to it. auto: the official
# files when found (a copy a package ships counts), else the component's documented fallback (InfVSR: infvsr-tiny);
# pretrained: the official files, a missing one fails at once; shipped: a package's copy; tiny: the reduced model;
# random: seeded random weights (tests), flagged in every record and refused by leaderboards.
WEIGHTS_CHOICES = ("auto", "pretrained", "shipped", "tiny", "random")


def check_weights_choice(value: Any, allowed: Iterable[str], owner: str) -> str:
    """``value`` when it is one of ``allowed`` (choices of WEIGHTS_CHOICES), else a one-line ConfigError listing them."""
    allowed = set(allowed)
    choices = [c for c in WEIGHTS_CHOICES if c in allowed]
    if str(value) not in choices:
        raise ConfigError(f"{owner}: weights must be one of {choices}, got {value!r}")
    return str(value)
