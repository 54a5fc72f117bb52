"""The method registry: registered names -> method adapters (the contract they implement is
``infvsr_bench.contracts.Method``), built from config data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Mapping

from infvsr_bench.config import from_options
from infvsr_bench.contracts import Method
from infvsr_bench.registry import PairedRegistry, Registry

if TYPE_CHECKING:  # the catalogue module loads the file readers (cv2): the hooks' modules import it
    from infvsr_bench.weights import WeightFile

# Each method's class and its Config dataclass (built-ins: methods/configs.py, which imports no torch).
_REGISTERED: PairedRegistry[type[Method]] = PairedRegistry("method", "config")
METHODS: Registry[type[Method]] = _REGISTERED.classes
METHOD_CONFIGS: Registry[type] = _REGISTERED.options
register_method = _REGISTERED.register

_CONFIGS = "methods.configs"
register_method("bicubic", "methods.classical:Bicubic", f"{_CONFIGS}:ClassicalConfig")
register_method("lanczos", "methods.classical:Lanczos", f"{_CONFIGS}:ClassicalConfig")
register_method("precomputed", "methods.precomputed:Precomputed", f"{_CONFIGS}:PrecomputedConfig")
register_method("infvsr", "methods.infvsr.adapter:InfVSR", f"{_CONFIGS}:InfVSRConfig")
register_method("realesrgan", "methods.realesrgan:RealESRGAN", f"{_CONFIGS}:RealESRGANConfig")
register_method("command", "methods.command:Command", f"{_CONFIGS}:CommandConfig")
register_method("torch_module", "methods.torch_module:TorchModule", f"{_CONFIGS}:TorchModuleConfig")

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
