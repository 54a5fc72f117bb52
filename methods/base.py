"""The method registry: registered names -> method adapters (the contract they implement is
``infvsr_bench.contracts.Method``), built from config data."""

from __future__ import annotations

from typing import Any, Mapping

from infvsr_bench.config import from_options
from infvsr_bench.contracts import Method
from infvsr_bench.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("bicubic", "methods.classical:Bicubic")
METHODS.register("lanczos", "methods.classical:Lanczos")
METHODS.register("precomputed", "methods.precomputed:Precomputed")
METHODS.register("infvsr", "methods.infvsr.adapter:InfVSR")
METHODS.register("realesrgan", "methods.realesrgan:RealESRGAN")
METHODS.register("command", "methods.command:Command")
METHODS.register("torch_module", "methods.torch_module:TorchModule")


def build_method(options: Mapping[str, Any]) -> Method:
    """Instantiate the registered method named by ``options['name']`` with the other options."""
    options = dict(options)
    name = str(options.pop("name", ""))
    cls = METHODS.get(name)
    return cls(from_options(cls.Config, options, f"method {name!r}"))
