"""Registries resolve lazily and answer unknown names with 'did you mean'."""

import pytest

from infvsr_bench.errors import ConfigError, UnknownNameError
from infvsr_bench.metrics import METRICS, build_metric
from methods import METHODS, build_method


def test_did_you_mean_for_close_names():
    with pytest.raises(UnknownNameError, match=r"unknown method 'bicubc'; did you mean 'bicubic'\?"):
        METHODS.get("bicubc")
    with pytest.raises(UnknownNameError, match=r"did you mean 'ssim'"):
        METRICS.get("sim")


def test_far_names_list_the_choices():
    with pytest.raises(UnknownNameError, match="available: .*bicubic.*lanczos"):
        METHODS.get("zzzzzz")


def test_unknown_options_and_target_are_refused():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['chunksize'\]"):
        build_method({"name": "bicubic", "chunksize": 3})
    with pytest.raises(ConfigError, match="_target_"):
        build_method({"name": "bicubic", "_target_": "os.system"})
    with pytest.raises(ConfigError, match="channel must be 'y' or 'rgb'"):
        build_metric("psnr", {"channel": "lab"})


def test_paired_registry_registers_a_component_and_its_options_together():
    from infvsr_bench.registry import PairedRegistry

    paired = PairedRegistry("widget", "settings")
    paired.register("w", "collections:OrderedDict", "dataclasses:Field")
    import collections
    import dataclasses

    assert paired.classes.get("w") is collections.OrderedDict and paired.options.get("w") is dataclasses.Field
    with pytest.raises(ValueError, match="widget 'w' is already registered"):
        paired.register("w", "collections:deque", "dataclasses:Field")
    with pytest.raises(UnknownNameError, match="unknown widget settings 'v'; available: w"):
        paired.options.get("v")
