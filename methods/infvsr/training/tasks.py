"""The three training tasks, each one optimiser step per batch: small VAE, flow-matching teacher, student.

* ``vae``: the causal VAE on HR clips (L1 reconstruction through the streaming encoder/decoder).
* ``teacher``: a bidirectional flow-matching DiT (the same blocks, no cache, RoPE from 0) on windows
  of ``dmd_window`` chunks of HR latents, unconditional (a zero context token): the real score.
* ``student``: InfVSR's causal one-step generator, rolled out over ``chunks`` chunks with the
  inference pipeline's own encode and step (rolling KV cache, absolute RoPE offsets), trained with
  patch-wise pixel supervision and cross-chunk DMD against the frozen teacher, with a fake score
  (initialised from the teacher) trained by flow matching on the student's outputs under TTUR.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from infvsr_bench.errors import ConfigError
from infvsr_bench.registry import Registry
from methods.infvsr.architecture import Architecture, Modules
from methods.infvsr.dit import CONTEXT_DIM, WanDiT
from methods.infvsr.pipeline import InfVSRPipeline
from methods.infvsr.training import flow
from methods.infvsr.training.checkpoint import load_optimizer, optimizer_tensors
from methods.infvsr.training.config import StageConfig, TrainConfig
from methods.infvsr.training.losses import dmd_loss, flow_matching_loss, pixel_loss, temporal_loss
from methods.infvsr.training.perceptual import build_perceptual
from methods.infvsr.vae import StreamCache, WanVAE

LATENTS_PER_CHUNK = 3  # 9 frames (scene start) or 12 frames -> 3 latent frames


@dataclasses.dataclass
class StageContext:
    """What a task is built from: the recipe, its stage, and the products of earlier stages."""

    config: TrainConfig
    name: str
    stage: StageConfig
    architecture: Architecture
    device: torch.device
    # Earlier stages' products (flat state dicts ``dit.*``/``vae.*``/``encoder.*``) and the architecture
    # they carry (the VAE's measured latent statistics), by stage name; "official" = the released files.
    load: Callable[[str], tuple[dict[str, torch.Tensor], Architecture]]


def chunk_bounds(frames: int) -> list[tuple[int, int]]:
    """InfVSR's chunking of a scene without cuts: 9 frames, then 12 each."""
    bounds, start = [], 0
    while start < frames:
        end = min(frames, start + (9 if start == 0 else 12))
        bounds.append((start, end))
        start = end
    return bounds


def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def _frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


class Task(ABC):
    """One stage's networks, optimisers and RNG; ``train_step`` takes a (GT, LR) batch."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx, self.stage, self.device = ctx, ctx.stage, ctx.device
        self.generator = torch.Generator().manual_seed(ctx.config.seed)
        self.modules: dict[str, nn.Module] = {}  # everything whose weights a checkpoint holds
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ema: WanDiT | None = None

    # ----------------------------------------------------------------------------------- helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when the recipe asks for it; nothing on the CPU."""
        on = self.ctx.config.autocast and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16) if on else contextlib.nullcontext()

    def optimizer(self, module: nn.Module, lr: float, betas: list[float]) -> torch.optim.Optimizer:
        params = [p for p in module.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=self.stage.weight_decay,
                                 foreach=False)

    def update(self, name: str, loss: torch.Tensor, step: int, lr: float) -> None:
        """Backward, clip, one optimiser step with the warmed-up learning rate."""
        opt = self.optimizers[name]
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / self.stage.warmup_steps) if self.stage.warmup_steps else lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.stage.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.stage.grad_clip)
        opt.step()

    def track_ema(self, model: nn.Module, step: int) -> None:
        """EMA of ``model`` (a copy until ``ema_start``)."""
        if self.ema is None:
            return
        decay = self.stage.ema if step >= self.stage.ema_start else 0.0
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), model.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator).to(like.device, like.dtype)

    def randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def dit_from(self, source: str) -> WanDiT:
        """A DiT from a stage's product (or the official file), else freshly initialised."""
        dit = self.ctx.architecture.new_dit(self.device, self.ctx.config.seed)
        if source:
            dit.load_state_dict(_sub(self.ctx.load(source)[0], "dit"))
        return dit.to(self.device)

    def vae_from(self, source: str) -> tuple[WanVAE, Architecture]:
        if not source:
            raise ConfigError(f"stage {self.ctx.name}: task {self.stage.task} needs `vae:` (a vae stage or official)")
        state, arch = self.ctx.load(source)
        vae = arch.new_vae(self.device, seed=None)
        vae.load_state_dict(_sub(state, "vae"))
        return _frozen(vae), arch

    # ---------------------------------------------------------------------------- checkpoints
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model/{n}/{k}": v for n, m in self.modules.items() for k, v in m.state_dict().items()}
        groups = {}
        for name, opt in self.optimizers.items():
            t, groups[name] = optimizer_tensors(opt, f"optim/{name}")
            tensors.update(t)
        tensors["rng/generator"] = self.generator.get_state()
        tensors["rng/torch_cpu"] = torch.get_rng_state()
        return tensors, {"optimizer_groups": groups}

    def load_state(self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
        for name, module in self.modules.items():
            prefix = f"model/{name}/"
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, opt in self.optimizers.items():
            load_optimizer(opt, tensors, f"optim/{name}", state["optimizer_groups"][name])
        self.generator.set_state(tensors["rng/generator"])
        torch.set_rng_state(tensors["rng/torch_cpu"])

    # ------------------------------------------------------------------------------ interface
    @abstractmethod
    def train_step(self, gt: torch.Tensor, lr: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch; returns the logged terms (tensors)."""

    @abstractmethod
    def validate(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Held-out metrics (the harness's own PSNR/SSIM where frames are produced)."""

    @abstractmethod
    def product(self) -> tuple[dict[str, torch.Tensor], Architecture]:
        """The stage's result for later stages: a flat state dict and the architecture it fits."""

    def info(self) -> dict[str, Any]:
        """Facts about how the stage trained, recorded with its product (e.g. which perceptual loss)."""
        return {}


def _score(sr: np.ndarray, gt: np.ndarray, prefix: str) -> dict[str, float]:
    """The harness's PSNR and SSIM (BT.601 Y, no crop) of uint8 (T,H,W,3) frames."""
    from infvsr_bench.metrics import build_metric

    out = {}
    for name in ("psnr", "ssim"):
        metric = build_metric(name, {})
        metric.reset()
        metric.update(sr, gt, 0)
        out[f"{prefix}_{name}"] = metric.compute().scalars[name]
    return out


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    from methods.infvsr.adapter import to_uint8

    return to_uint8(frames)


def _model_range(frames: np.ndarray) -> torch.Tensor:
    from methods.infvsr.adapter import to_model_range

    return to_model_range(frames)


class VAETask(Task):
    """The small causal VAE: L1 reconstruction of HR clips through the streaming encoder and decoder."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.arch = ctx.architecture
        self.vae = ctx.architecture.new_vae(self.device, ctx.config.seed)
        if self.stage.init:
            state, self.arch = ctx.load(self.stage.init)
            self.vae.load_state_dict(_sub(state, "vae"))
        self.modules = {"vae": self.vae}
        self.optimizers = {"vae": self.optimizer(self.vae, self.stage.lr, self.stage.betas)}
        self._latents: list[torch.Tensor] = []

    def train_step(self, gt: torch.Tensor, lr: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        gt = gt.to(self.device)
        with self.autocast():
            z = self.vae.encode(gt, StreamCache(), first_chunk=True)
            rec = self.vae.decode(z, StreamCache())
            l1 = F.l1_loss(rec.float(), gt)
            penalty = z.float().pow(2).mean()
        self.update("vae", l1 + self.stage.latent_penalty * penalty, step, self.stage.lr)
        # The last 32 batches' latents (per channel) give the latent normalisation of the product.
        self._latents = (self._latents + [z.detach().float().transpose(0, 1).flatten(1).cpu()])[-32:]
        return {"l1": l1.detach(), "latent_rms": penalty.detach().sqrt()}

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, state = super().state_tensors()
        tensors.update({f"stats/latents/{i:02d}": z for i, z in enumerate(self._latents)})
        return tensors, state

    def load_state(self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
        super().load_state(tensors, state)
        self._latents = [tensors[k] for k in sorted(tensors) if k.startswith("stats/latents/")]

    @torch.no_grad()
    def validate(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Reconstruction PSNR/SSIM, streamed chunk by chunk as at inference: the tiny model's ceiling."""
        scores = []
        for _, gt, _ in clips:
            enc, dec, frames = StreamCache(), StreamCache(), []
            for a, b in chunk_bounds(len(gt)):
                x = _model_range(gt[a:b]).to(self.device)
                frames.append(self.vae.decode_chunk(self.vae.encode_chunk(x, enc, first_chunk=a == 0), dec))
            scores.append(_score(_to_uint8(torch.cat(frames, 2)), gt, "recon"))
        return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]} if scores else {}

    def product(self) -> tuple[dict[str, torch.Tensor], Architecture]:
        """The VAE with its latent normalisation measured on the last training batches (per channel)."""
        arch = self.arch
        if self._latents:
            raw = torch.cat(self._latents, 1)  # normalised by the current stats: undo, then re-measure
            mean = torch.tensor(arch.vae.latent_mean)[:, None]
            std = torch.tensor(arch.vae.latent_std)[:, None]
            raw = raw.cpu() * std + mean
            arch = arch.with_latent_stats(tuple(raw.mean(1).tolist()), tuple(raw.std(1).clamp_min(1e-3).tolist()))
        return {f"vae.{k}": v for k, v in self.vae.state_dict().items()}, arch


def _null_context(batch: int, device: torch.device) -> torch.Tensor:
    """The teacher's and fake score's context: one zero token (unconditional scores)."""
    return torch.zeros(batch, 1, CONTEXT_DIM, device=device)


def _windows(z: torch.Tensor, window: int) -> list[torch.Tensor]:
    """Every run of ``window`` adjacent chunks of a rollout's latents (3 latent frames per chunk)."""
    chunks = z.shape[2] // LATENTS_PER_CHUNK
    size = window * LATENTS_PER_CHUNK
    return [z[:, :, k * LATENTS_PER_CHUNK:k * LATENTS_PER_CHUNK + size] for k in range(chunks - window + 1)]


def score_velocity(dit: WanDiT, x_t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A bidirectional, unconditional score call: the whole window at once, RoPE from 0, no cache."""
    return dit(x_t, flow.timesteps(sigma).to(x_t.device), _null_context(x_t.shape[0], x_t.device), 0, None)[0]


class TeacherTask(Task):
    """Bidirectional flow matching on windows of HR latents (the frozen VAE's), Wan's shift-5 schedule."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.vae, self.arch = self.vae_from(self.stage.vae)
        self.dit = self.dit_from(self.stage.init).train()
        self.dit.gradient_checkpointing = ctx.config.gradient_checkpointing
        self.modules = {"dit": self.dit}
        if self.stage.ema:
            self.ema = _frozen(copy.deepcopy(self.dit))
            self.modules["ema"] = self.ema
        self.optimizers = {"dit": self.optimizer(self.dit, self.stage.lr, self.stage.betas)}

    def window(self, gt: torch.Tensor, offset: int) -> torch.Tensor:
        with torch.no_grad():
            z = self.vae.encode_chunk(gt.to(self.device), StreamCache(), first_chunk=True)
        return _windows(z, self.stage.dmd_window)[offset]

    def train_step(self, gt: torch.Tensor, lr: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        x0 = self.window(gt, self.randint(self.stage.chunks - self.stage.dmd_window + 1))
        sigma = flow.sample_sigmas(x0.shape[0], self.generator).to(self.device)
        noise = self.noise(x0)
        with self.autocast():
            loss = flow_matching_loss(score_velocity(self.dit, flow.add_noise(x0, noise, sigma), sigma).float(), x0, noise)
        self.update("dit", loss, step, self.stage.lr)
        self.track_ema(self.dit, step)
        return {"flow": loss.detach()}

    @torch.no_grad()
    def validate(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Flow-matching loss on held-out windows at fixed sigmas and fixed noise."""
        model = self.ema or self.dit
        losses = []
        gen = torch.Generator().manual_seed(0)
        for _, gt, _ in clips:
            frames = 9 + 12 * (self.stage.dmd_window - 1)
            x0 = self.window(_model_range(gt[:frames]), 0)
            for s in (0.1, 0.3, 0.5, 0.7, 0.9):
                sigma = torch.full((1,), s)
                noise = torch.randn(x0.shape, generator=gen).to(x0)
                losses.append(float(flow_matching_loss(score_velocity(model, flow.add_noise(x0, noise, sigma), sigma), x0, noise)))
        return {"val_flow": float(np.mean(losses))} if losses else {}

    def product(self) -> tuple[dict[str, torch.Tensor], Architecture]:
        return {f"dit.{k}": v for k, v in (self.ema or self.dit).state_dict().items()}, self.arch


class StudentTask(Task):
    """InfVSR's generator: causal rollouts through the inference pipeline, pixel terms and cross-chunk DMD."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        st = self.stage
        self.vae, self.arch = self.vae_from(st.vae)
        self.encoder = self._encoder()
        self.dit = self.dit_from(st.init).train()
        self.dit.gradient_checkpointing = ctx.config.gradient_checkpointing
        self.pipeline = InfVSRPipeline(self.dit, self.vae, self.encoder, scale=ctx.config.data.scale, device=self.device)
        self.modules = {"dit": self.dit}
        self.optimizers = {"dit": self.optimizer(self.dit, st.lr, st.betas)}
        if st.ema:
            self.ema = _frozen(copy.deepcopy(self.dit))
            self.modules["ema"] = self.ema
        self.teacher = self.fake = None
        if st.losses.dmd:
            if not st.teacher:
                raise ConfigError(f"stage {ctx.name}: losses.dmd > 0 needs `teacher:` (a teacher stage)")
            self.teacher = _frozen(self.dit_from(st.teacher))
            self.fake = self.dit_from(st.teacher).train()  # the fake score starts as the teacher (DMD2)
            self.fake.gradient_checkpointing = ctx.config.gradient_checkpointing
            self.modules["fake"] = self.fake
            self.optimizers["fake"] = self.optimizer(self.fake, st.fake_lr, st.fake_betas)
        if not any(dataclasses.astuple(st.losses)):
            raise ConfigError(f"stage {ctx.name}: every loss weight is 0")
        self.perceptual_name, self.perceptual = "", None
        if st.losses.perceptual:
            self.perceptual_name, module = build_perceptual(st.perceptual, ctx.config.weights_dir or None)
            self.perceptual = module.to(self.device)

    def _encoder(self) -> nn.Module:
        """The frozen visual encoder: the released RAM Swin-L + DAPE for ``infvsr``, else the tiny Swin at
        its seeded initialisation (no pretrained tiny Swin exists; it is shipped with the model)."""
        if self.ctx.architecture.name == "infvsr":
            encoder = self.arch.new_encoder("meta")
            encoder.load_state_dict(_sub(self.ctx.load("official")[0], "encoder"), assign=True)
            encoder.init_buffers()
        else:
            encoder = self.ctx.architecture.new_encoder(self.device, seed=self.ctx.config.seed)
        return _frozen(encoder.to(self.device))

    # ----------------------------------------------------------------------------- the rollout
    def rollout(self, lr: torch.Tensor, pipeline: InfVSRPipeline | None = None) -> torch.Tensor:
        """Restored latents of every chunk [B,16,3*chunks,h,w]: the pipeline's own encode and one step per
        chunk, KV cache and RoPE offset carried exactly as at inference."""
        pipe = pipeline or self.pipeline
        pipe.reset()
        out = []
        for k, (a, b) in enumerate(chunk_bounds(lr.shape[2])):
            latents = pipe.encode(lr[:, :, a:b], new_scene=k == 0)
            out.append(pipe.step(latents, keep_cache_graph=self.stage.cache_gradient))
        return torch.cat(out, dim=2)

    def decoded_crop(self, z: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A random latent crop decoded by the frozen decoder (fresh causal cache, ``pixel_margin`` latent px of
        context decoded and dropped) and the same crop of the GT frames."""
        h, w = z.shape[-2:]
        c, m, s = min(self.stage.pixel_crop, h, w), self.stage.pixel_margin, self.vae.spatial_factor
        i, j = self.randint(h - c + 1), self.randint(w - c + 1)
        r0, c0 = max(0, i - m), max(0, j - m)
        frames = self.vae.decode(z[..., r0:min(h, i + c + m), c0:min(w, j + c + m)], StreamCache())
        sr = frames[..., (i - r0) * s:(i - r0 + c) * s, (j - c0) * s:(j - c0 + c) * s]
        return sr, gt[..., i * s:(i + c) * s, j * s:(j + c) * s]

    def _noised(self, x: torch.Tensor, clamp: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sigma = flow.sample_sigmas(x.shape[0], self.generator, clamp=clamp).to(x.device)
        noise = self.noise(x)
        return flow.add_noise(x, noise, sigma), noise, sigma

    def dmd_term(self, z: torch.Tensor) -> torch.Tensor:
        """Mean DMD loss over every window of ``dmd_window`` adjacent chunks, scored jointly."""
        terms = []
        for x in _windows(z, self.stage.dmd_window):
            x_t, _, sigma = self._noised(x.detach(), tuple(self.stage.dmd_sigma))
            with torch.no_grad():
                real = flow.clean_estimate(x_t, score_velocity(self.teacher, x_t, sigma), sigma)
                fake = flow.clean_estimate(x_t, score_velocity(self.fake, x_t, sigma), sigma)
            terms.append(dmd_loss(x, real, fake))
        return torch.stack(terms).mean()

    def fake_step(self, z: torch.Tensor, step: int) -> torch.Tensor:
        """Flow matching of the fake score on the student's (detached) windows, sigma over the full range."""
        losses = []
        with self.autocast():
            for x in _windows(z.detach().float(), self.stage.dmd_window):
                x_t, noise, sigma = self._noised(x, None)
                losses.append(flow_matching_loss(score_velocity(self.fake, x_t, sigma).float(), x, noise))
            loss = torch.stack(losses).mean()
        self.update("fake", loss, step, self.stage.fake_lr)
        return loss.detach()

    def generator_terms(self, z: torch.Tensor, gt: torch.Tensor, dmd: bool) -> dict[str, torch.Tensor]:
        w = self.stage.losses
        terms: dict[str, torch.Tensor] = {}
        if w.latent:
            with torch.no_grad():
                z_gt = self.vae.encode_chunk(gt, StreamCache(), first_chunk=True)
            terms["latent"] = F.mse_loss(z.float(), z_gt.float())
        if w.pixel or w.temporal or w.perceptual:
            sr, ref = self.decoded_crop(z, gt)
            sr = sr.float()
            if w.pixel:
                terms["pixel"] = pixel_loss(sr, ref, self.stage.pixel_norm)
            if w.temporal:
                terms["temporal"] = temporal_loss(sr, ref)
            if w.perceptual:
                def frames(x: torch.Tensor) -> torch.Tensor:
                    return x.transpose(1, 2).flatten(0, 1)

                terms["perceptual"] = self.perceptual(frames(sr), frames(ref))
        if dmd:
            terms["dmd"] = self.dmd_term(z.float())
        return terms

    def train_step(self, gt: torch.Tensor, lr: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        st = self.stage
        gt, lr = gt.to(self.device), lr.to(self.device)
        dmd = bool(st.losses.dmd) and step >= st.dmd_start
        generator_step = not dmd or (step - st.dmd_start) % st.ttur == 0
        logs: dict[str, torch.Tensor] = {}
        with torch.set_grad_enabled(generator_step), self.autocast():
            z = self.rollout(lr)
        if generator_step:
            with self.autocast():
                terms = self.generator_terms(z, gt, dmd)
                total = sum(getattr(st.losses, k) * v for k, v in terms.items())
            self.update("dit", total, step, st.lr)
            self.track_ema(self.dit, step)
            logs = {**{k: v.detach() for k, v in terms.items()}, "total": total.detach()}
        if dmd:
            logs["fake_flow"] = self.fake_step(z, step)
        return logs

    @torch.no_grad()
    def validate(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
        """SR PSNR/SSIM on held-out clips through the inference pipeline (EMA weights when kept), and bicubic's."""
        from methods import build_method

        pipe = InfVSRPipeline(self.ema or self.dit, self.vae, self.encoder, scale=self.pipeline.scale,
                              device=self.device)
        bicubic = build_method({"name": "bicubic", "scale": self.pipeline.scale})
        scores = []
        for _, gt, lr in clips:
            x = _model_range(lr).to(self.device)
            pipe.reset()
            sr = [pipe.process(x[:, :, a:b], new_scene=a == 0) for a, b in chunk_bounds(x.shape[2])]
            scores.append({**_score(_to_uint8(torch.cat(sr, 2)), gt, "sr"), **_score(bicubic.process(lr), gt, "bicubic")})
        return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]} if scores else {}

    def product(self) -> tuple[dict[str, torch.Tensor], Architecture]:
        """The whole model as inference loads it (EMA DiT when kept, the frozen VAE and encoder)."""
        modules = Modules(self.ema or self.dit, self.vae, self.encoder)
        return modules.state_dict(), self.arch

    def info(self) -> dict[str, Any]:
        return {"perceptual": self.perceptual_name}


TASKS: Registry[type[Task]] = Registry("training task")
TASKS.register("vae", VAETask)
TASKS.register("teacher", TeacherTask)
TASKS.register("student", StudentTask)

