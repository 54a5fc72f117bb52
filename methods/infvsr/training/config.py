"""The training recipe schema (``conf/train/*.yaml``): data, then named stages run in order.

Every choice the paper leaves open (crop size, loss weights, schedule, curriculum) is a field here
with a documented default; a recipe sets what differs. Configs are data: stage tasks, source types,
degradations and perceptual losses are registered names, never import paths.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

from infvsr_bench.errors import ConfigError


@dataclasses.dataclass
class DataConfig:
    """Where GT clips come from and how LR is made (on the fly, with the dataset builder's degradations)."""

    # Source specs ({type: photo|video|benchmark, ...}, see training/data.py). The recipes' sources
    # are media installed packages ship that no evaluation recipe in conf/dataset uses.
    train: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    val: List[Dict[str, Any]] = dataclasses.field(default_factory=list)  # held-out clips (validation)
    degradation: Dict[str, Any] = dataclasses.field(default_factory=lambda: {"type": "bicubic"})
    scale: int = 4
    max_zoom: float = 2.0  # photos: up to this many photo pixels per HR pixel
    max_speed: float = 2.0  # photos: pan speed, HR pixels per frame per axis
    flip: bool = True  # random horizontal flips
    val_frames: int = 33  # frames per validation clip (9 + 12 + 12: three chunks)
    val_size: List[int] = dataclasses.field(default_factory=lambda: [96, 128])  # HR H, W of validation clips


@dataclasses.dataclass
class LossWeights:
    """Generator loss weights (0 switches a term off); every term is logged."""

    latent: float = 0.0  # MSE(restored latent, GT latent): stage-1 regression (DOVE stage 1)
    pixel: float = 1.0  # L1/L2 on a decoded random latent crop vs the same GT crop
    perceptual: float = 0.0  # perceptual distance on the same crops (see ``perceptual``)
    temporal: float = 1.0  # L1 of adjacent-frame differences on the crops (DOVE's, no alignment)
    dmd: float = 0.0  # cross-chunk distribution matching


@dataclasses.dataclass
class StageConfig:
    """One stage: a registered task trained for ``steps`` optimiser steps from ``init``."""

    task: str = "student"  # vae | teacher | student
    steps: int = 100
    batch_size: int = 2
    crop: List[int] = dataclasses.field(default_factory=lambda: [64, 64])  # HR crop H, W (multiples of 16)
    chunks: int = 2  # chunks per training clip: 9 + 12 * (chunks - 1) frames (InfVSR's chunking)
    lr: float = 1e-4
    betas: List[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    warmup_steps: int = 0  # linear learning-rate warm-up
    init: str = ""  # "" = from scratch, a previous stage's name, or "official" (the released files)
    vae: str = ""  # stage whose VAE is used (frozen), or "official"; "" for the vae task itself
    teacher: str = ""  # stage whose DiT is the real score (student with dmd > 0)
    ema: float = 0.0  # EMA decay of the trained network (0 = none); exported when set
    ema_start: int = 0  # steps before the EMA starts averaging (it copies until then)
    # student
    losses: LossWeights = dataclasses.field(default_factory=LossWeights)
    pixel_norm: str = "l1"  # l1 | l2
    pixel_crop: int = 4  # side of the decoded latent crop (latent px; x8 in pixels)
    pixel_margin: int = 1  # latent px decoded around the crop and discarded (crop-edge effects)
    perceptual: str = "auto"  # auto | lpips_alex | lite0 (offline substitute) ; see training/perceptual.py
    dmd_window: int = 2  # adjacent chunks the teacher scores jointly (1 = per-chunk DMD)
    dmd_sigma: List[float] = dataclasses.field(default_factory=lambda: [0.02, 0.98])  # clamp of the shifted sigma
    dmd_start: int = 0  # generator steps with pixel terms only before DMD (and fake updates) begin
    fake_lr: float = 1e-4
    fake_betas: List[float] = dataclasses.field(default_factory=lambda: [0.0, 0.999])
    ttur: int = 5  # fake-score updates per generator update (DMD2's two time-scale rule)
    cache_gradient: bool = False  # keep the KV cache in the graph (gradients cross chunks); Self-Forcing detaches
    # vae
    latent_penalty: float = 1e-6  # weight of mean(z^2) keeping the small VAE's latents bounded
    # bookkeeping
    log_every: int = 10
    val_every: int = 0  # 0 = only at the end
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.chunks < 1 or self.ttur < 1:
            raise ConfigError("stage: need steps >= 0, batch_size >= 1, chunks >= 1, ttur >= 1")
        if len(self.crop) != 2 or any(c % 16 or c < 16 for c in self.crop):
            raise ConfigError(f"stage: crop must be [H, W], multiples of 16, got {list(self.crop)}")
        if self.task != "vae" and not 1 <= self.dmd_window <= self.chunks:
            raise ConfigError(f"stage: dmd_window must be in 1..chunks ({self.chunks}), got {self.dmd_window}")
        if self.pixel_norm not in ("l1", "l2"):
            raise ConfigError(f"stage: pixel_norm must be l1 or l2, got {self.pixel_norm!r}")

    @property
    def frames(self) -> int:
        return 9 + 12 * (self.chunks - 1)


@dataclasses.dataclass
class TrainConfig:
    """A training recipe: an architecture, data, and stages run in order (each resumable)."""

    name: str = "train"
    architecture: str = "infvsr-tiny"
    output_dir: str = "runs/train/${name}"
    seed: int = 0
    device: str = "auto"
    autocast: bool = True  # bf16 autocast on CUDA (CPU runs stay float32)
    gradient_checkpointing: bool = False  # recompute DiT block activations in the backward pass
    threads: int = 0  # torch CPU threads (0 = torch's default)
    weights_dir: str = ""  # weights folder for official files and the LPIPS trunk
    progress: bool = True
    overwrite: bool = False  # retrain a stage whose checkpoints or product come from another config (else refused)
    keep_checkpoints: int = 2
    export: str = ""  # file stem to write the final model as (shipped format + model card); "" = none
    smoke: bool = False  # a smoke model: the exported card says so, never presented as trained
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    stages: Dict[str, StageConfig] = dataclasses.field(default_factory=dict)


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
