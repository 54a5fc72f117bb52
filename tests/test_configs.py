"""Every shipped config composes through Hydra and fills its schema dataclass; the CLI's option-key
check accepts exactly the schema fields, so inherited and default-valued options work."""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
import yaml
from omegaconf import OmegaConf

from infvsr_bench.cli import check_option_keys, compose, conf_dir
from infvsr_bench.config import from_options
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics import METRICS
from methods import METHODS
from vsr_datasets.benchmark import DATASET_KINDS

# Run configs; conf/train/ holds training recipes, a schema of their own (tests/test_infvsr_training.py).
CONFIGS = sorted(p.relative_to(conf_dir()).with_suffix("").as_posix() for p in conf_dir().glob("*/*.yaml")
                 if p.parent.name != "train")


def _composed(group: str, choice: str) -> dict:
    """The group's resolved config for one choice (a fresh copy: callers pop keys)."""
    return copy.deepcopy(_compose_once(group, choice))


@functools.cache
def _compose_once(group: str, choice: str) -> dict:
    override = f"metrics=[{choice}]" if group == "metrics" else f"{group}={choice}"
    node = compose([override])[group]
    return OmegaConf.to_container(node[choice] if group == "metrics" else node, resolve=True)


def _method_schema(choice: str, options: dict) -> object:
    cls = METHODS.get(options.pop("name"))
    return from_options(cls.Config, options, "method")


def _dataset_schema(choice: str, options: dict) -> object:
    return from_options(DATASET_KINDS.get(options.get("kind", "generated")), options, "dataset")


def _metric_schema(column: str, options: dict) -> object:
    cls = METRICS.get(options.pop("metric", column))
    for key in cls.runtime_options:
        options.pop(key, None)
    return from_options(cls.Settings, options, "metric")


SCHEMAS = {"method": _method_schema, "dataset": _dataset_schema, "metrics": _metric_schema}


def _yaml(path: str) -> dict:
    return yaml.safe_load((conf_dir() / f"{path}.yaml").read_text(encoding="utf-8"))


def test_configs_are_discovered_in_every_group():
    assert {c.split("/")[0] for c in CONFIGS} == set(SCHEMAS) and len(CONFIGS) >= 40


@pytest.mark.parametrize("config", CONFIGS)
def test_config_fills_its_schema_dataclass(config):
    """An unknown, misspelt or badly valued key anywhere in a config fails here."""
    group, choice = config.split("/")
    schema = SCHEMAS[group](choice, _composed(group, choice))
    assert dataclasses.is_dataclass(schema)


METHOD_CHOICES = [c.split("/")[1] for c in CONFIGS if c.startswith("method/")]
TOOLS = [m for m in METHOD_CHOICES if _yaml(f"method/{m}").get("defaults") == ["command", "_self_"]]


def test_external_tool_configs_start_from_command():
    tools = set(METHOD_CHOICES) - {"command"}
    with_command_name = {t for t in tools if _composed("method", t)["name"] == "command"}
    assert set(TOOLS) == with_command_name and len(TOOLS) == 9


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_config_is_command_plus_its_own_keys(tool):
    own = {k: v for k, v in _yaml(f"method/{tool}").items() if k != "defaults"}
    assert own and not set(own) & {"name"} and all(_yaml("method/command").get(k) != v for k, v in own.items())
    assert _composed("method", tool) == {**_composed("method", "command"), **own}
    cfg = compose([f"method={tool}", "method.timeout=10", "method.cwd=/x"])
    assert (cfg.method.timeout, cfg.method.cwd, cfg.method.label) == (10, "/x", own["label"])


@pytest.mark.parametrize("choice", METHOD_CHOICES)
def test_method_option_keys_are_the_config_dataclass_fields(choice):
    cls = METHODS.get(_composed("method", choice)["name"])
    for field in ["name", *(f.name for f in dataclasses.fields(cls.Config))]:
        check_option_keys([f"method={choice}", f"method.{field}=1"])
    with pytest.raises(ConfigError, match=f"unknown option method.bogus for method '{choice}'"):
        check_option_keys([f"method={choice}", "method.bogus=1"])


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset.use_gt=false"],  # a GeneratedConfig field longform_mini.yaml leaves at its default
        ["dataset=folder", "dataset.convention.channel=rgb"],
        ["dataset=vid4", "dataset.set=spmcs"],
        ["metrics=[lpips]", "metrics.lpips.weights_dir=/w", "metrics.lpips.random_weights=true"],  # runtime options
        ["metrics=[psnr_rgb]", "metrics.psnr_rgb.metric=psnr", "metrics.psnr_rgb.channel=y"],
        ["metrics=[ewarp]", "metrics.ewarp.flow_options.iters=12"],
        ["method=bicubic", "method.name=command", "method.timeout=5"],  # the keys of the method named
        ["dataset=vid4", "dataset.kind=folder", "dataset.lr_dir=x"],
    ],
)
def test_option_keys_from_schema_fields_are_accepted(overrides):
    check_option_keys(overrides)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["dataset.use_gtt=false"],
         "unknown option dataset.use_gtt for dataset 'longform_mini'; did you mean 'use_gt'?"),
        (["dataset=vid4", "dataset.clips_from.folder=/x"], "unknown option dataset.clips_from for dataset 'vid4'"),
        (["metrics=[lpips]", "metrics.lpips.weight_dir=/w"],
         "unknown option metrics.lpips.weight_dir; did you mean 'weights_dir'"),
        (["metrics=[psnr_rgb]", "metrics.psnr_rgb.flow=dis"], "unknown option metrics.psnr_rgb.flow;"),
    ],
)
def test_option_keys_outside_the_schema_fail_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        check_option_keys(overrides)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
