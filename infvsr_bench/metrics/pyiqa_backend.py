"""pyiqa as an optional, strictly offline backend: every pretrained file resolved by us, none fetched implicitly.

pyiqa (PolyForm Noncommercial licence) and the libraries it calls download missing files on first
use (into torch's hub folder). Here each file is a catalogue entry (``infvsr_bench.weights``),
resolved *before* pyiqa is imported (weights folder, then those library caches, then a shipped
copy). pyiqa never reads a network's file itself (its loader unpickles with ``weights_only=False``,
so a planted file would run code): the network is built without its pretrained file and the state
dict we read (``load_tensors``) is loaded into it; backbones that pyiqa builds through torchvision
or CLIP are built by us from the resolved file (or with random weights for tests). Downloads
happen only with the runtime option ``allow_download``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import logging
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import numpy as np

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics.base import MetricKind, PerFrameMetric
from infvsr_bench.weights import WeightFile, WeightsKind, load_into, load_tensors, resolve_weights

PYIQA_LICENCE = "PolyForm-Noncommercial-1.0.0"


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A second network that a pyiqa arch builds by calling a global of its module (``module.attr``).

    ``factory(path)`` returns the replacement for that global: it builds the network from the
    resolved ``path``, or with random weights when ``path`` is None.
    """

    module: str
    attr: str
    file: WeightFile
    factory: Callable[[Path | None], Any]


@dataclasses.dataclass(frozen=True)
class PyiqaSpec:
    """How to build one pyiqa metric offline."""

    name: str  # pyiqa's metric name (a key of pyiqa's DEFAULT_CONFIGS)
    model: WeightFile | None = None  # pyiqa's own file: the network's state dict, read by us
    backbones: tuple[Backbone, ...] = ()
    # pyiqa options that build the network without its own pretrained file (random mode, and the network
    # our state dict is loaded into); None: no such mode.
    random_options: Mapping[str, Any] | None = dataclasses.field(default_factory=lambda: {"pretrained": False})
    # Whether the model file holds every key of pyiqa's network, as pyiqa loads it (LPIPS, DISTS: only their own layers).
    strict: bool = True
    # Parameters that are not a network (NIQE): read by us, handed to pyiqa as ``pretrained_model_path``.
    model_option: Callable[[Path], Any] | None = None

    def files(self) -> tuple[WeightFile, ...]:
        return ((self.model,) if self.model else ()) + tuple(b.file for b in self.backbones)


def torchvision_trunk(arch: str, **as_pretrained: Any) -> Callable[[Path | None], Any]:
    """Factory for a torchvision classifier that pyiqa builds as ``models.<arch>(weights='IMAGENET1K_V1')``.

    The network is built as torchvision builds it before loading weights (``as_pretrained``: the
    arguments torchvision adds then, e.g. VGG's ``init_weights=False``), so random draws match;
    it is then loaded strictly from the resolved file instead of torchvision's download.
    """

    def factory(path: Path | None) -> Any:
        import torch
        import torchvision

        def build(*_: Any, weights: Any = None, pretrained: Any = None, **kwargs: Any) -> torch.nn.Module:
            net = getattr(torchvision.models, arch)(weights=None, **as_pretrained, **kwargs)
            if path is not None:
                load_into(net, load_tensors(path), path)
            return net

        return types.SimpleNamespace(**{arch: build})

    return factory


# OpenAI CLIP RN50's architecture (build_model infers the same from the checkpoint).
CLIP_RN50 = {
    "embed_dim": 1024, "image_resolution": 224, "vision_layers": (3, 4, 6, 3), "vision_width": 64, "vision_patch_size": None,
    "context_length": 77, "vocab_size": 49408, "transformer_width": 512, "transformer_heads": 8, "transformer_layers": 12,
}


def clip_rn50(path: Path | None) -> Callable[..., Any]:
    """Factory for pyiqa's ``clip_model.load(name, device)``: from the resolved file, or random RN50."""
    from pyiqa.archs import clip_model

    if path is not None:
        return lambda name, device="cpu", **kwargs: clip_model.load(str(path), device)

    def random_rn50(name: str, device: Any = "cpu", **kwargs: Any) -> Any:
        model = clip_model.CLIP(**CLIP_RN50)
        clip_model.convert_weights(model)  # the fp16 round trip that load() applies to real weights
        return model.eval().to(device).float()

    return random_rn50


@dataclasses.dataclass
class PyiqaModel:
    """A built pyiqa metric with the record of how it was built."""

    model: Any  # pyiqa's InferenceModel
    weights: WeightsKind
    sha256: dict[str, str]
    info: dict[str, Any]


def build(
    spec: PyiqaSpec,
    options: Mapping[str, Any] | None = None,
    *,
    device: str = "auto",
    weights_dir: str | None = None,
    allow_download: bool = False,
    weights: str = "auto",
    seed: int = 0,
) -> PyiqaModel:
    """Build pyiqa's metric ``spec.name`` with its default options plus ``options``, offline.

    Files are resolved (and a missing one reported) before pyiqa is imported, so a missing file
    fails in milliseconds. ``weights="random"`` builds every network from ``seed`` instead (tests).
    Backbone globals are patched only while the metric is built (not thread-safe: build in one thread).
    """
    if importlib.util.find_spec("pyiqa") is None:
        raise ConfigError(f"metric {spec.name!r} needs the optional backend pyiqa (PolyForm Noncommercial licence): pip install pyiqa")
    options = dict(options or {})
    random_weights = weights == WeightsKind.RANDOM
    if random_weights:
        if spec.random_options is None:
            raise ConfigError(f"pyiqa metric {spec.name!r} has no random-weights mode (it has no learned weights)")
        options.update(spec.random_options)
    chosen = resolve_weights(weights, spec.files(), weights_dir, allow_download)
    paths = {name: r.path for name, r in chosen.found.items()}
    import pyiqa
    import torch

    logging.getLogger("pyiqa").setLevel(logging.WARNING)  # its per-metric INFO lines would flood run output
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    build_options, state = dict(options), None
    if spec.model is not None and not random_weights:
        model_path = paths[spec.model.filename]
        if spec.model_option is not None:
            build_options["pretrained_model_path"] = spec.model_option(model_path)
        else:  # read first (a bad file fails before anything is built), loaded into the network below
            state = load_tensors(model_path)
            build_options.update(spec.random_options)
    with torch.random.fork_rng(devices=[]), contextlib.ExitStack() as stack:
        torch.manual_seed(seed)
        for b in spec.backbones:
            path = None if random_weights else paths[b.file.filename]
            stack.enter_context(mock.patch.object(importlib.import_module(b.module), b.attr, b.factory(path)))
        model = pyiqa.create_metric(spec.name, device=resolve_device(device), **build_options)
    if state is not None:
        from pyiqa.archs.arch_util import clean_state_dict

        load_into(model.net, clean_state_dict(state), model_path, strict=spec.strict)  # as pyiqa's load_pretrained_network
    config = DEFAULT_CONFIGS[spec.name]
    info = {
        "backend": "pyiqa",
        "version": importlib.metadata.version("pyiqa"),
        "licence": PYIQA_LICENCE,
        "metric": spec.name,
        "options": {**config["metric_opts"], **options},
        "lower_better": bool(config.get("lower_better", False)),
        "files": {name: str(path) for name, path in paths.items()},
    }
    return PyiqaModel(model, chosen.kind, chosen.sha256, info)


def to_tensor(frames: np.ndarray, device: Any) -> Any:
    """uint8 (T,H,W,3) RGB -> float (T,3,H,W) in [0,1] on ``device`` (as torchvision's ToTensor)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.permute(0, 3, 1, 2).contiguous().float().div(255)


class PyiqaMetric(PerFrameMetric):
    """A per-frame pyiqa metric: frames scored in batches of ``batch_size``, the clip value their mean.

    Batches always cover frames [0,B), [B,2B), ... whatever the chunking, so streaming gives exactly
    the values of one call; at most ``batch_size - 1`` frames wait between chunks.
    """

    spec: ClassVar[PyiqaSpec]
    runtime_options = ("device", "batch_size", "weights_dir", "allow_download", "weights", "seed")
    weights_choices = ("auto", "random")
    default_protocol = "pyiqa"

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.batch_size = int(runtime.get("batch_size", 4))
        if self.batch_size < 1:
            raise ConfigError(f"{self.name}: batch_size must be >= 1, got {self.batch_size}")
        built = build(
            self.spec, self.pyiqa_options(),
            device=str(runtime.get("device", "auto")), weights_dir=runtime.get("weights_dir"),
            allow_download=bool(runtime.get("allow_download", False)),
            weights=self.weights_choice, seed=int(runtime.get("seed", 0)),
        )
        self.model, self.weights, self.weights_sha256, self.backend_info = built.model, built.weights, built.sha256, built.info

    def pyiqa_options(self) -> dict[str, Any]:
        """pyiqa options set from the settings (on top of pyiqa's defaults for the metric)."""
        return {}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "backend": self.backend_info}

    def reset(self) -> None:
        super().reset()
        self._pending: list[tuple[int, np.ndarray, np.ndarray | None]] = []

    def _run(self, sr: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
        device = self.model.device
        x = to_tensor(sr, device)
        out = self.model(x, to_tensor(gt, device)) if self.kind == MetricKind.FULL_REFERENCE else self.model(x)
        return out.detach().reshape(-1).double().cpu().numpy()

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return float(self._run(sr[None], None if gt is None else gt[None])[0])

    def _flush(self, n: int) -> None:
        batch, self._pending = self._pending[:n], self._pending[n:]
        sr = np.stack([b[1] for b in batch])
        gt = np.stack([b[2] for b in batch]) if self.needs_gt else None
        self._frames.extend(b[0] for b in batch)
        self._values.extend(float(v) for v in self._run(sr, gt))

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        if self.needs_gt and gt is None:
            raise ValueError(f"{self.name} is a full-reference metric and needs ground-truth frames")
        stride = getattr(self.settings, "stride", 1)  # settings with a stride score every stride-th frame
        for i in range(sr.shape[0]):
            if (frame_index + i) % stride == 0:
                self._pending.append((frame_index + i, sr[i], None if gt is None else gt[i]))
        while len(self._pending) >= self.batch_size:
            self._flush(self.batch_size)
        # Frames left waiting are copied: the caller may reuse its chunk buffers.
        self._pending = [(i, s.copy(), None if g is None else g.copy()) for i, s, g in self._pending]

    def compute(self) -> Any:
        if self._pending:
            self._flush(len(self._pending))
        return super().compute()
