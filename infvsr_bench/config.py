"""Structured configs: the run schema registered with Hydra, and typed option parsing for registries."""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Callable, Dict, Mapping, Optional

from infvsr_bench.errors import ConfigError, UnknownNameError
from infvsr_bench.registry import Registry, did_you_mean


@dataclasses.dataclass
class ShardConfig:
    """This worker's part of a run: shard ``index`` of ``count`` (clips balanced by frame count,
    infvsr_bench/run/shards.py); a clip's lease older than ``lease_timeout_s`` is taken over."""

    count: int = 1
    index: int = 0
    lease_timeout_s: float = 120.0


@dataclasses.dataclass
class RunConfig:
    """Top-level options of ``run``; method/dataset/metrics are validated by their own schemas."""

    method: Any = None
    dataset: Any = None
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    output_root: str = "runs"
    run_name: str = "${method.name}"
    data_root: str = "${oc.env:INFVSR_DATA,'~/.cache/infvsr_bench/datasets'}"
    seed: int = 0
    max_clips: Optional[int] = None
    max_frames: Optional[int] = None
    save_outputs: bool = False
    output_codec: str = "ffv1"
    # Pass SR frames through a lossy encode before scoring (infvsr_bench/io/transcode.py):
    # lossless | x264_yuv420p_q7 (InfVSR's official writer). Changes results: part of a run's identity.
    score_through: str = "lossless"
    overwrite: bool = False
    progress: bool = True
    # Decode, run the method, score and write in overlapping threads (same results; false: one thread).
    pipeline: bool = True
    # CPU threads torch may use (0: torch's default, one per core). Changes speed, never values: one
    # thread each lets two runs share a small machine. Recorded as environment.torch_threads.
    threads: int = 0
    # Which clips this worker does and how workers share a run folder; not part of a run's identity.
    shard: ShardConfig = dataclasses.field(default_factory=ShardConfig)


def _one_folder_name(name: str) -> bool:
    """A name that is exactly one folder inside its parent (not empty, '.', '..', absolute or nested)."""
    return name not in ("", ".", "..") and not any(sep in name for sep in ("/", "\\", os.sep))


def _output_codec(value: str) -> None:
    from infvsr_bench.io.writers import LOSSLESS_CODECS

    codecs = ["png", *LOSSLESS_CODECS]  # png: a folder of PNG frames (infvsr_bench.io.writers.open_writer)
    if value not in codecs:
        raise UnknownNameError(f"unknown output_codec {value!r}; {did_you_mean(value, codecs)}")


def _score_through(value: str) -> None:
    from infvsr_bench.io.transcode import SCORE_THROUGH

    SCORE_THROUGH.get(value)  # its one-line 'unknown ...; did you mean'


# Top-level option -> (holds, what it must be): a value outside would fail every clip obscurely, give
# wrong results (NaN clips marked ok, a clip silently dropped) or write outside output_root.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_clips": (lambda v: v is None or v >= 1, "a number of clips >= 1, or null for all"),
    "max_frames": (lambda v: v is None or v >= 1, "a number of frames >= 1, or null for whole clips"),
    "threads": (lambda v: v >= 0, "a number of threads >= 0 (0: torch's default)"),
    "run_name": (_one_folder_name, "one folder name inside output_root (not empty, '.' or '..', no '/' or '\\')"),
    "output_root": (bool, "a folder"),
    "data_root": (bool, "a folder"),
}
# Top-level option -> a check that raises its own one-line error (a name in a registry).
NAMES: dict[str, Callable[[str], None]] = {
    "output_codec": _output_codec,
    "score_through": _score_through,
}


# The option types of the schemas, as an error message names them.
_TYPE_WORDS = {int: "an integer", Optional[int]: "an integer or null", bool: "true or false", str: "a string",
               float: "a number"}


def option_keys() -> dict[str, type]:
    """The typed scalar options a ``run`` accepts (``max_frames``, ``shard.count``, ...) and their types."""
    keys = {k: t for k, t in typing.get_type_hints(RunConfig).items() if t in _TYPE_WORDS}
    keys.update({f"shard.{k}": t for k, t in typing.get_type_hints(ShardConfig).items()})
    return keys


def check_run_options(options: Mapping[str, Any]) -> None:
    """Refuse, in one line, a top-level ``run`` option of the wrong type (Hydra's own message is many
    lines) or out of range (see RANGES). ``options`` maps keys of :func:`option_keys` to values as the
    command line parses them (before Hydra: nothing is written yet) or as the resolved config holds
    them (job.execute: interpolations, config files); other keys are left to their own schemas."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    keys = option_keys()
    schema = OmegaConf.structured(RunConfig)
    for key, value in options.items():
        if key not in keys or (isinstance(value, str) and "${" in value):  # interpolations: once resolved
            continue
        try:
            OmegaConf.update(schema, key, value)  # the schema's own conversion: exactly what Hydra accepts
        except ValidationError:
            raise ConfigError(f"{key} must be {_TYPE_WORDS[keys[key]]}; got {value!r}") from None
        value = OmegaConf.select(schema, key)
        holds, requirement = RANGES.get(key, (None, ""))
        if holds is not None and not holds(value):
            raise ConfigError(f"{key} must be {requirement}; got {value!r}")
        if key in NAMES:
            NAMES[key](value)


def register_schemas() -> None:
    """The run schema, and each metric's Settings defaults as ``metric_settings/<metric>``: a metric config
    starts from them (``defaults: [/metric_settings/<metric>@_here_, _self_]``) and states only what differs."""
    from hydra.core.config_store import ConfigStore  # only the CLI needs Hydra

    from infvsr_bench.metrics import METRIC_SETTINGS  # torch-free modules: the metrics themselves stay unloaded

    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    store_defaults("metric_settings", METRIC_SETTINGS)


def store_defaults(group: str, classes: Registry[type]) -> None:
    """Each dataclass ``classes`` names, its field defaults stored in Hydra's ConfigStore as ``<group>/<name>``
    (a config starts from them with ``/<group>/<name>@_here_``)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name in classes.names():
        store.store(group=group, name=name, node=field_defaults(classes.get(name)))


def field_defaults(cls: type) -> dict[str, Any]:
    """The dataclass ``cls``'s field defaults as config data (tuples as lists), before any __post_init__."""
    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    return {f.name: plain(f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
            for f in dataclasses.fields(cls)}


def from_options(cls: type, options: Mapping[str, Any], what: str) -> Any:
    """Fill the dataclass ``cls`` from config data, with one-line errors for unknown or bad keys."""
    options = dict(options)
    if "_target_" in options:
        raise ConfigError(f"{what}: '_target_' is not allowed; only registered names are instantiated")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"{what}: unknown option(s) {unknown}; valid: {sorted(fields)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
