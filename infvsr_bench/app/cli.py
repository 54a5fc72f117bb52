"""Command line: ``python -m infvsr_bench run|build|verify [overrides]`` (Hydra for configs).

Names in overrides (method=, dataset=, metrics=) are checked before Hydra sees them, so a typo
gives one 'did you mean' line; every user-facing error is one line on stderr with exit code 2.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from infvsr_bench.errors import ConfigError, InfvsrError, UnknownNameError
from infvsr_bench.interrupts import sigterm_unwinds, stopped_by
from infvsr_bench.registry import did_you_mean

log = logging.getLogger("infvsr_bench")
GROUPS = ("method", "dataset", "metrics")
USAGE = """usage: python -m infvsr_bench <command> [key=value ...]

commands:
  run      super-resolve and score every clip of a dataset   (run method=bicubic dataset=longform_mini)
  build    build a generated benchmark dataset               (build dataset=longform_mini)
  verify   re-check a built benchmark's checksums            (verify <folder>)
  download fetch pretrained files explicitly (online)        (download <group|metric|method> ... [weights_dir=<folder>])
  report   leaderboards and figures from run folders          (report runs/** out=reports/x)
  merge    rebuild a run's tables from its clip files         (merge runs/longform_mini/bicubic)
  train    train a model from a recipe in conf/train          (train infvsr_tiny [key=value ...])

Hydra options work after 'run': --cfg job, -m (multirun), hydra.verbose=true.
"""


def conf_dir() -> Path:
    """The Hydra config folder: inside the installed package, or conf/ of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return packaged if (packaged / "config.yaml").exists() else package.parent / "conf"


def group_options(group: str) -> list[str]:
    """The choices of a config group; a name starting with _ is a base other configs start from (_tool)."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml") if not p.stem.startswith("_"))


def check_overrides(overrides: list[str]) -> None:
    """Fail fast, in one line, on unknown config names and on unusable output folders."""
    for item in overrides:
        m = re.fullmatch(r"[+~]?(method|dataset|metrics)=(.*)", item)
        if not m:
            continue
        group, value = m.groups()
        names = [v.strip() for v in value.strip("[]").split(",") if v.strip()] if group == "metrics" else value.split(",")
        known = group_options(group)
        for name in names:
            if name not in known:
                kind = {"metrics": "metric"}.get(group, group)
                raise UnknownNameError(f"unknown {kind} {name!r}; {did_you_mean(name, known)}")
    check_option_keys(overrides)
    check_option_values(overrides)
    _preflight_weights(overrides)
    roots = [o.split("=", 1)[1] for o in overrides if o.startswith("output_root=")]
    from infvsr_bench.results.store import check_writable

    check_writable(Path(roots[-1] if roots else "runs").expanduser())


def check_option_keys(overrides: list[str]) -> None:
    """One line with the closest keys for a mistyped option (``max_frame=``, ``method.scal=``, an
    appended ``+foo=``) instead of Hydra's multi-line 'not in struct' or a silently accepted key.
    Valid keys are the fields of the schema dataclasses, so a key a config inherits or leaves at its
    default is accepted; the group's yaml only says which method / dataset kind a choice names."""
    from infvsr_bench.config import RunConfig, ShardConfig

    top = _fields(RunConfig) | {"hydra"}
    for item in overrides:
        m = re.fullmatch(r"\+{0,2}([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?[^=]*=.*", item)
        if not m:
            continue
        head, key = m.groups()
        if head not in top:
            raise ConfigError(f"unknown option {head!r}; {did_you_mean(head, top)}")
        if head in GROUP_OPTION_KEYS and key:
            name = _last(overrides, head) or _default_choice(head)
            if name not in group_options(head):  # a sweep (a,b) or a name Hydra will report: its message
                continue
            keys = GROUP_OPTION_KEYS[head](name, overrides)
            if keys is not None and key not in keys:
                raise ConfigError(f"unknown option {head}.{key} for {head} {name!r}; {did_you_mean(key, keys)}")
        elif head == "metrics" and key:
            _check_metric_option(item, key, overrides)
        elif head == "shard" and key and key not in _fields(ShardConfig):
            raise ConfigError(f"unknown option shard.{key}; {did_you_mean(key, _fields(ShardConfig))}")


def check_option_values(overrides: list[str]) -> None:
    """Type and range of the top-level options (config.check_run_options) before Hydra starts: its own
    type error is many lines, and it makes each job's folder from ``run_name`` before the job runs.
    Every value of a sweep (``-m max_frames=100,200``) is checked."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from infvsr_bench.config import check_run_options, option_keys

    parser, keys = OverridesParser.create(), option_keys()
    for item in (o for o in overrides if "=" in o and not o.startswith("-")):
        try:
            override = parser.parse_override(item)
        except OverrideParseException as exc:
            raise ConfigError(f"cannot parse {item!r}: {str(exc).splitlines()[0]}") from None
        if override.key_or_group not in keys or override.is_delete() or override.is_interval_sweep():
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            check_run_options({override.key_or_group: value})


def _check_metric_option(item: str, column: str, overrides: list[str]) -> None:
    """``metrics.<column>.<option>=``: the column must be selected and the option one of its metric's
    Settings fields, runtime options or ``metric``."""
    if any(o.startswith(f"+metrics.{column}.") for o in overrides):
        return  # a column the user adds on the command line: its options are the schema's to check
    chosen = _last(overrides, "metrics")
    selected = [v.strip() for v in chosen.strip("[]").split(",") if v.strip()] if chosen else _default_choice("metrics")
    if column not in selected:
        raise ConfigError(f"{item.split('=')[0]}: metric {column!r} is not in this run's metrics {selected}")
    m = re.match(r"metrics\.\w+\.([A-Za-z_]\w*)", item)
    if not m:
        return
    keys = _metric_keys(column, overrides)
    if keys is not None and m.group(1) not in keys:
        raise ConfigError(f"unknown option metrics.{column}.{m.group(1)}; {did_you_mean(m.group(1), keys)}")


def _fields(schema: type) -> set[str]:
    """The field names of a schema dataclass: the option keys it accepts."""
    import dataclasses

    return {f.name for f in dataclasses.fields(schema)}


def _method_keys(choice: str, overrides: list[str]) -> set[str] | None:
    """Options of the method a ``method=`` choice names (its Config fields + name); None when that
    method is not registered (building it reports the name). Imports the method (and torch)."""
    from methods import METHODS

    name = _last(overrides, "method.name") or _config_value("method", choice, "name")
    return _fields(METHODS.get(name).Config) | {"name"} if name in METHODS else None


def _dataset_keys(choice: str, overrides: list[str]) -> set[str] | None:
    """Options of the dataset kind a ``dataset=`` choice names (the kind's dataclass fields)."""
    from vsr_datasets.benchmark import DATASET_KINDS

    kind = _last(overrides, "dataset.kind") or _config_value("dataset", choice, "kind") or "generated"
    return _fields(DATASET_KINDS.get(kind)) if kind in DATASET_KINDS else None


def _metric_keys(column: str, overrides: list[str]) -> set[str] | None:
    """Options of the metric a column names (Settings fields + runtime options + ``metric``)."""
    from infvsr_bench.metrics import METRICS

    name = _last(overrides, f"metrics.{column}.metric") or _config_value("metrics", column, "metric") or column
    if name not in METRICS:
        return None
    cls = METRICS.get(name)
    return _fields(cls.Settings) | set(cls.runtime_options) | {"metric"}


# Group -> the option keys of a choice (a config name) in that group, for ``<group>.<key>=``.
GROUP_OPTION_KEYS: dict[str, Callable[[str, list[str]], set[str] | None]] = {
    "method": _method_keys, "dataset": _dataset_keys,
}


def _config_data(group: str, choice: str) -> dict[str, Any]:
    """conf/<group>/<choice>.yaml over the configs its defaults list starts from (flashvsr -> _tool -> command;
    psnr_dove_y -> psnr_dove@_here_); {} for a name with no yaml."""
    import yaml

    path = conf_dir() / group / f"{choice}.yaml"
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    bases = [d.split("@")[0] for d in data.get("defaults", [])
             if isinstance(d, str) and d != "_self_" and not d.startswith("/")]  # /metric_settings/...: no file
    merged: dict[str, Any] = {}
    for base in bases:
        merged.update({k: v for k, v in _config_data(group, base).items() if v is not None})
    return {**merged, **data}


def _config_value(group: str, choice: str, key: str) -> Any:
    """``key`` of conf/<group>/<choice>.yaml, else of the configs its defaults list starts from
    (flashvsr -> _tool -> command: name; psnr_dove_y -> psnr_dove@_here_: metric); None when none sets it."""
    return _config_data(group, choice).get(key)


def _default_choice(group: str) -> str | list[str]:
    """The group's choice in config.yaml's defaults list (method: bicubic; metrics: [psnr, ssim])."""
    import yaml

    defaults = yaml.safe_load((conf_dir() / "config.yaml").read_text(encoding="utf-8"))["defaults"]
    return next(d[group] for d in defaults if isinstance(d, dict) and group in d)


def _last(overrides: list[str], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith(key + "=")]
    return values[-1] if values else None


def _preflight_weights(overrides: list[str]) -> None:
    """A method whose weights are missing fails here, in well under a second (no torch import): its weights
    hook (``methods.base.required_weights``) names the files its options (the config's yaml, then ``method.<key>=``
    values as given) load, and each is located."""
    from infvsr_bench.weights import locate
    from methods.base import required_weights

    choice = _last(overrides, "method")
    if not choice:
        return
    given = {o.split("=", 1)[0].lstrip("+").removeprefix("method."): o.split("=", 1)[1]
             for o in overrides if o.lstrip("+").startswith("method.") and "=" in o}
    options = {**_config_data("method", choice), **given}
    locate(required_weights(str(options.get("name") or choice), options), options.get("weights_dir") or None)


def register_all_schemas() -> None:
    """All that composing conf/ needs in Hydra's ConfigStore: the core's (the run schema, metric_settings/<metric>)
    and each method's Config defaults as ``method_settings/<method>`` (a method config starts from them:
    ``defaults: [/method_settings/<method>@_here_, _self_]``). Loads no method (their Configs import no torch)."""
    from infvsr_bench.config import register_schemas, store_defaults
    from methods.base import METHOD_CONFIGS

    register_schemas()
    store_defaults("method_settings", METHOD_CONFIGS)


def compose(overrides: list[str]):
    """The resolved config for ``overrides`` without starting a Hydra job (build, verify, tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_all_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def cmd_run(overrides: list[str]) -> int:
    import hydra

    if not any(o.startswith("--") or o == "-m" for o in overrides):
        check_overrides(overrides)
    else:
        check_option_values(overrides)
    register_all_schemas()
    status = {"code": 0}
    launching_pid = os.getpid()

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def task(cfg) -> None:
        from infvsr_bench.app.launch import run_job

        status["code"] = max(status["code"], run_job(cfg, launching_pid))

    sys.argv = [sys.argv[0], *overrides]
    task()
    return status["code"]


def cmd_build(overrides: list[str]) -> int:
    from omegaconf import OmegaConf

    from vsr_datasets.benchmark import load_dataset

    check_overrides(overrides)
    cfg = compose(overrides)
    dataset = load_dataset(OmegaConf.to_container(cfg.dataset, resolve=True))
    print(f"{dataset.name}: {len(dataset.clips)} clips in {dataset.root}")
    return 0


def cmd_verify(args: list[str]) -> int:
    from vsr_datasets.builder import verify_benchmark

    if len(args) != 1:
        raise ConfigError("usage: python -m infvsr_bench verify <benchmark folder>")
    problems = verify_benchmark(Path(args[0]))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{args[0]}: all checksums match")
    return 0


def cmd_download(args: list[str]) -> int:
    """Explicitly fetch pretrained files (never done implicitly) into <weights folder>/<group>/.

    Each name is a weights group (a sub-folder of the weights folder) or a metric or method, meaning
    the files it needs; files already there or in a library cache are not fetched again.
    """
    from infvsr_bench.weights import download, download_names, files_for

    names, options = [a for a in args if "=" not in a], [a for a in args if "=" in a]
    if not names:
        raise ConfigError("usage: python -m infvsr_bench download <group|metric|method> ... [weights_dir=<folder>]; "
                          f"names: {', '.join(download_names())}")
    for item in options:
        key = item.split("=", 1)[0]
        if key != "weights_dir":
            raise ConfigError(f"unknown option {key!r} for download; {did_you_mean(key, ['weights_dir'])}")
    for name in names:
        if not files_for(name):
            raise UnknownNameError(f"unknown weights group, metric or method {name!r}; {did_you_mean(name, download_names())}")
    files = list({f.key: f for name in names for f in files_for(name)}.values())
    for r in download(files, _last(options, "weights_dir") or None).values():
        print(f"{r.file.key}: {r.path} ({r.kind}, sha256 {r.sha256})")
    return 0


def cmd_report(args: list[str]) -> int:
    """Leaderboards and figures from run folders: report <run folders or globs> [key=value ...]."""
    from infvsr_bench.config import from_options
    from infvsr_bench.report.build import ReportOptions, build_report

    paths = [a for a in args if "=" not in a]
    options: dict = {}
    for item in (a for a in args if "=" in a):
        key, value = item.split("=", 1)
        if key == "metrics":
            options[key] = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        elif key == "plots":
            options[key] = value.lower() in ("1", "true", "yes")
        else:
            options[key] = value
    if not paths:
        raise ConfigError("usage: python -m infvsr_bench report <run folders or globs> [out=DIR] [metrics=[a,b]] "
                          "[methods_as=rows|columns] [aggregation=clip_mean|frame_weighted] [reference=infvsr_paper]")
    out, files = build_report(paths, from_options(ReportOptions, options, "report"))
    print(f"report: {len(files)} files in {out}")
    return 0


def cmd_train(args: list[str]) -> int:
    """Train from a recipe: train <recipe> [key=value ...] (Hydra overrides of conf/train/<recipe>.yaml),
    by the trainer registered for the recipe's architecture (methods.trainers)."""
    names, overrides = [a for a in args if "=" not in a], [a for a in args if "=" in a]
    recipes = group_options("train")
    if len(names) != 1:
        raise ConfigError(f"usage: python -m infvsr_bench train <recipe> [key=value ...]; recipes: {', '.join(recipes)}")
    if names[0] not in recipes:
        raise UnknownNameError(f"unknown train recipe {names[0]!r}; {did_you_mean(names[0], recipes)}")
    from methods.trainers import TRAINERS

    architecture = _last(overrides, "architecture") or _config_value("train", names[0], "architecture")
    if not architecture:
        raise ConfigError(f"train recipe {names[0]!r} names no architecture; trainable: {', '.join(TRAINERS.names())}")
    trainer = TRAINERS.get(str(architecture))
    print(f"trained: {trainer(conf_dir() / 'train', names[0], overrides)}")
    return 0


def cmd_merge(args: list[str]) -> int:
    """Rebuild run folders' tables and records from their clip files; 0 when every clip is ok."""
    from infvsr_bench.results.record import RUN_FILE, is_run_folder
    from infvsr_bench.results.store import RunStore

    if not args or any("=" in a for a in args):
        raise ConfigError("usage: python -m infvsr_bench merge <run folder> ...")
    code = 0
    for folder in map(Path, args):
        if not is_run_folder(folder):
            raise ConfigError(f"{folder}: not a run folder (no {RUN_FILE})")
        summary = RunStore(folder).merge()
        print(f"{folder}: {summary.describe()}")
        code = max(code, 0 if summary.status.value == "complete" else 1)
    return code


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": cmd_run, "build": cmd_build, "verify": cmd_verify, "download": cmd_download, "report": cmd_report,
    "merge": cmd_merge,
    "train": cmd_train,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        with sigterm_unwinds():  # SIGTERM unwinds like Ctrl-C (an external tool is ended, not orphaned)
            if command not in COMMANDS:
                raise UnknownNameError(f"unknown command {command!r}; {did_you_mean(command, COMMANDS)}")
            return COMMANDS[command](rest)
    except InfvsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        if "libGL" not in str(exc):
            raise
        print("error: cv2 is OpenCV's GUI build, which needs libGL: run `pip install --force-reinstall "
              "--no-deps opencv-python-headless==4.13.0.92` (see README)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        what, code = stopped_by(exc)
        print(f"interrupted ({what}): finished clips are saved; run the same command again to resume",
              file=sys.stderr)
        return code
