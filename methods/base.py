"""The method registry: registered names -> method adapters (the contract they implement is
``infvsr_bench.contracts.Method``), built from config data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Mapping

from infvsr_bench.config import from_options
from infvsr_bench.contracts import Method
from infvsr_bench.registry import Registry
from infvsr_bench.weights import WeightFile

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("bicubic", "methods.classical:Bicubic")
METHODS.register("lanczos", "methods.classical:Lanczos")
METHODS.register("precomputed", "methods.precomputed:Precomputed")
METHODS.register("infvsr", "methods.infvsr.adapter:InfVSR")
METHODS.register("realesrgan", "methods.realesrgan:RealESRGAN")
METHODS.register("command", "methods.command:Command")
METHODS.register("torch_module", "methods.torch_module:TorchModule")

# Each method's weights hook: the catalogue files its options (a config mapping: ``weights``, ``weights_dir``, ...)
# will load, for methods that load catalogued files. Its module imports no torch, so the CLI locates the files
# (``required_weights``) before anything heavy loads; the method resolves the same files when it is built.
REQUIRED_WEIGHTS: Registry[Callable[[Mapping[str, Any]], list[WeightFile]]] = Registry("method weights hook")
REQUIRED_WEIGHTS.register("infvsr", "methods.infvsr.weight_files:required_weights")


def required_weights(name: str, options: Mapping[str, Any]) -> list[WeightFile]:
    """The catalogue files the registered method ``name`` loads with ``options`` (none when it declares none)."""
    return REQUIRED_WEIGHTS.get(name)(options) if name in REQUIRED_WEIGHTS else []


def build_method(options: Mapping[str, Any]) -> Method:
    """Instantiate the registered method named by ``options['name']`` with the other options."""
    options = dict(options)
    name = str(options.pop("name", ""))
    cls = METHODS.get(name)
    return cls(from_options(cls.Config, options, f"method {name!r}"))
