"""The training run: a recipe's stages in order, each resumed from its newest checkpoint, validated and logged.

Layout of ``output_dir``: ``split.json`` (the training / validation sources), per stage
``<stage>/checkpoints/step_*.safetensors``, ``<stage>/log.jsonl`` (every logged term, validations)
and ``<stage>/final.safetensors`` (its product, with a digest of everything that shaped it); with
``export`` set, ``<export>.safetensors`` + ``<export>.json`` (the model as ``method=infvsr`` loads it,
and its card). Re-running a command resumes; a stage trained under another config is refused in one
line (``overwrite=true`` retrains it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from infvsr_bench.checksums import json_digest, sha256_file
from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.atomic import write_bytes, write_json
from infvsr_bench.progress import progress_bar
from methods.infvsr.architecture import ARCHITECTURES, Architecture, count_parameters
from methods.infvsr.training.checkpoint import (latest_checkpoint, load_checkpoint, read_safetensors, save_checkpoint,
                                                write_safetensors)
from methods.infvsr.training.config import StageConfig, TrainConfig
from methods.infvsr.training.data import ClipSampler, build_sources, source_keys
from methods.infvsr.training.tasks import TASKS, StageContext, Task

log = logging.getLogger("infvsr_bench")
SPECIAL_SOURCES = ("", "official")


# Fields that do not change what a step computes: changing them keeps a stage resumable.
_BOOKKEEPING = ("steps", "log_every", "val_every", "checkpoint_every")


def stage_digest(cfg: TrainConfig, name: str, stage: StageConfig, upstream: dict[str, str]) -> str:
    """What shaped a stage's weights: architecture, data, seed, its name and place, options, inputs' digests."""
    options = {k: v for k, v in dataclasses.asdict(stage).items() if k not in _BOOKKEEPING}
    refs = {r: upstream.get(r, r) for r in (stage.init, stage.vae, stage.teacher)}
    return json_digest({"architecture": ARCHITECTURES.get(cfg.architecture).to_json(), "data": dataclasses.asdict(cfg.data),
                    "seed": cfg.seed, "stage": [name, list(cfg.stages).index(name)], "options": options,
                    "inputs": refs})


class Products:
    """Finished stages' products by name (read from ``final.safetensors``) and the official files ("official")."""

    def __init__(self, root: Path, cfg: TrainConfig) -> None:
        self.root, self.cfg = root, cfg
        self.cache: dict[str, tuple[dict[str, torch.Tensor], Architecture]] = {}

    def __call__(self, source: str) -> tuple[dict[str, torch.Tensor], Architecture]:
        if source not in self.cache:
            self.cache[source] = self._read(source)
        return self.cache[source]

    def _read(self, source: str) -> tuple[dict[str, torch.Tensor], Architecture]:
        if source == "official":
            from methods.infvsr.checkpoints import load_official, resolve_files

            arch = ARCHITECTURES.get("infvsr")
            paths, _ = resolve_files(self.cfg.weights_dir or None)
            return load_official(arch.build("meta", seed=None), paths).state_dict(), arch
        tensors, metadata = read_safetensors(self.root / source / "final.safetensors")
        return tensors, Architecture.from_json(metadata["architecture"])


def _check_references(cfg: TrainConfig) -> None:
    """Every stage names a registered task and only earlier stages (or "official") as inputs."""
    if not cfg.stages:
        raise ConfigError(f"train recipe {cfg.name}: no stages")
    seen: list[str] = []
    for name, stage in cfg.stages.items():
        TASKS.get(stage.task)
        for key in ("init", "vae", "teacher"):
            ref = getattr(stage, key)
            if ref not in SPECIAL_SOURCES and ref not in seen:
                raise ConfigError(f"stage {name}: {key}={ref!r} is not an earlier stage (earlier: {seen or 'none'})")
            if ref == "official" and cfg.architecture != "infvsr":
                raise ConfigError(f"stage {name}: {key}=official needs architecture=infvsr (the released sizes)")
        seen.append(name)


def _split(cfg: TrainConfig) -> dict[str, Any]:
    train, val = source_keys(cfg.data.train), source_keys(cfg.data.val)
    shared = sorted(set(train) & set(val))
    if shared:
        raise ConfigError(f"training and validation share source(s) {shared}; hold validation clips out")
    return {"train": train, "val": val, "degradation": dict(cfg.data.degradation), "scale": cfg.data.scale}


def train(cfg: TrainConfig) -> Path:
    """Run every stage of the recipe (resuming what is there); returns the output folder."""
    _check_references(cfg)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir).expanduser()
    split = _split(cfg)
    sources = build_sources(cfg.data.train)
    val_clips = ClipSampler(build_sources(cfg.data.val), cfg.data, cfg.seed).fixed_clips(
        cfg.data.val_frames, cfg.data.val_size) if cfg.data.val else []
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "split.json", split)
    products = Products(out, cfg)
    digests: dict[str, str] = {}
    summaries: dict[str, Any] = {}
    for index, (name, stage) in enumerate(cfg.stages.items()):
        digests[name] = stage_digest(cfg, name, stage, digests)
        ctx = StageContext(cfg, name, stage, ARCHITECTURES.get(cfg.architecture), device, products)
        sampler = ClipSampler(sources, cfg.data, cfg.seed, stream=index)
        summaries[name] = run_stage(ctx, sampler, val_clips, out / name, digests[name])
    if cfg.export:
        export(cfg, out, products, summaries, split)
    return out


def _final_summary(final: Path, digest: str, steps: int, overwrite: bool, name: str) -> dict[str, Any] | None:
    """The summary of a finished stage when it is this very stage at this many steps, else None; a product
    of another config is refused unless ``overwrite``."""
    if not final.is_file():
        return None
    _, metadata = read_safetensors(final)
    if metadata.get("digest") != digest:
        if not overwrite:
            raise ConfigError(f"stage {name}: {final} was trained with another config; "
                              "use another output_dir, or overwrite=true to retrain it")
        return None
    summary = json.loads(metadata.get("summary", "{}"))
    return summary if summary.get("steps") == steps else None


def _start(task: Task, folder: Path, digest: str, stage: StageConfig, overwrite: bool, name: str) -> tuple[int, float]:
    """Load the newest checkpoint of this stage: (its step, training seconds so far), or (0, 0);
    refuse another config's checkpoints."""
    latest = latest_checkpoint(folder / "checkpoints")
    if latest is None:
        return 0, 0.0
    tensors, state = load_checkpoint(latest)
    if state["digest"] != digest or state["step"] > stage.steps:
        if not overwrite:
            why = "another config" if state["digest"] != digest else f"{state['step']} steps (> steps={stage.steps})"
            raise ConfigError(f"stage {name}: {folder} holds a checkpoint trained with {why}; "
                              "use another output_dir, or overwrite=true to retrain it")
        for old in (folder / "checkpoints").glob("step_*.safetensors"):
            old.unlink()
        return 0, 0.0
    task.load_state(tensors, state)
    return int(state["step"]), float(state["seconds"])


def _log(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines up to ``step`` (a resumed stage logs the rest again); rewritten atomically, since a
    torn line would stop every later resume."""
    if path.is_file():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln)["step"] <= step]
        write_bytes(path, "".join(ln + "\n" for ln in lines).encode("utf-8"))


def run_stage(ctx: StageContext, sampler: ClipSampler, val_clips: list, folder: Path, digest: str) -> dict[str, Any]:
    """Train one stage to ``steps`` (resuming), validate, write its product; returns its summary."""
    stage, cfg = ctx.stage, ctx.config
    final = folder / "final.safetensors"
    done = _final_summary(final, digest, stage.steps, cfg.overwrite, ctx.name)
    if done is not None:
        log.info("stage %s: already trained (%d steps), skipped", ctx.name, stage.steps)
        return done
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(digest[:8], 16))  # the global RNG too starts each stage from a known state
    task = TASKS.get(stage.task)(ctx)
    start, seconds = _start(task, folder, digest, stage, cfg.overwrite, ctx.name)
    log_path = folder / "log.jsonl"
    _truncate_log(log_path, start)
    began = time.perf_counter()
    bar = progress_bar(total=stage.steps, initial=start, desc=ctx.name, unit="step", enabled=cfg.progress)
    for step in range(start, stage.steps):
        gt, lr = sampler.batch(step, stage.batch_size, stage.frames, stage.crop)
        terms = {k: float(v) for k, v in task.train_step(gt, lr, step).items()}
        bar.update(1)
        if (step + 1) % stage.log_every == 0 or step == start:
            _log(log_path, {"step": step + 1, **terms})
            bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items()}, refresh=False)
        if stage.val_every and (step + 1) % stage.val_every == 0 and step + 1 < stage.steps:
            _log(log_path, {"step": step + 1, "val": task.validate(val_clips)})
        if (step + 1) % stage.checkpoint_every == 0 or step + 1 == stage.steps:
            tensors, state = task.state_tensors()
            save_checkpoint(folder / "checkpoints", step + 1, tensors,
                            {**state, "step": step + 1, "data_position": step + 1, "digest": digest,
                             "seconds": seconds + time.perf_counter() - began},
                            keep=cfg.keep_checkpoints)
    bar.close()
    val = task.validate(val_clips)
    _log(log_path, {"step": stage.steps, "val": val})
    summary = {"task": stage.task, "steps": stage.steps, "val": val, **task.info(),
               "seconds": round(seconds + time.perf_counter() - began, 1)}
    tensors, arch = task.product()
    write_safetensors(final, tensors, {"architecture": arch.to_json(), "digest": digest, "summary": json.dumps(summary)})
    log.info("stage %s: %d steps, validation %s", ctx.name, stage.steps, val)
    return summary


def export(cfg: TrainConfig, out: Path, products: Products, summaries: dict[str, Any], split: dict[str, Any]) -> Path:
    """The last student stage's model as ``method=infvsr`` loads it, with its card (metrics, recipe, split)."""
    students = [n for n, s in cfg.stages.items() if s.task == "student"]
    if not students:
        raise ConfigError(f"export={cfg.export!r} needs a student stage")
    tensors, arch = products(students[-1])
    vaes = [s["val"] for n, s in summaries.items() if cfg.stages[n].task == "vae"]
    student_val = summaries[students[-1]]["val"]
    steps = {n: s["steps"] for n, s in summaries.items()}
    kind = "SMOKE model (CI-sized training, not a trained model)" if cfg.smoke else "trained model"
    card = {
        "model": arch.name,
        "smoke": cfg.smoke,
        "summary": f"{kind}: recipe {cfg.name}, steps {steps}, validation SR PSNR {student_val.get('sr_psnr', float('nan')):.2f} dB "
                   f"vs bicubic {student_val.get('bicubic_psnr', float('nan')):.2f} dB, its VAE's reconstruction "
                   f"{(vaes[-1] if vaes else {}).get('recon_psnr', float('nan')):.2f} dB (the ceiling)",
        "recipe": cfg.name,
        "stages": summaries,
        "metrics": {**student_val, **(vaes[-1] if vaes else {})},
        "parameters": {name: count_parameters(m) for name, m in _modules(arch, tensors).items()},
        "visual_encoder": "the tiny Swin (RAM's Swin class and DAPE-merged path, 64 px) at its seeded initialisation, "
                          "frozen (no pretrained tiny Swin exists)" if arch.name != "infvsr" else "RAM Swin-L + DAPE",
        "data_split": split,
        "torch": torch.__version__,
        "config": dataclasses.asdict(cfg),
    }
    path = out / f"{cfg.export}.safetensors"
    metadata = {"architecture": arch.to_json(), "card": json.dumps(card)}
    # safetensors orders metadata keys arbitrarily: an unchanged export is kept, so its sha256 stays valid.
    if not path.is_file() or read_safetensors(path)[1] != metadata:
        write_safetensors(path, tensors, metadata)
    write_json(out / f"{cfg.export}.json", {**card, "sha256": sha256_file(path)})
    log.info("exported %s (%s)", path, card["summary"])
    return path


def _modules(arch: Architecture, tensors: dict[str, torch.Tensor]) -> dict[str, torch.nn.Module]:
    modules = arch.build("meta", seed=None)
    modules.load_state_dict(tensors)
    return dict(modules.items())


def train_recipe(config_dir: Path, name: str, overrides: list[str]) -> Path:
    """Compose the recipe and train it: InfVSR's entry in methods.trainers.TRAINERS."""
    return train(load_recipe(config_dir, name, overrides))


def load_recipe(config_dir: Path, name: str, overrides: list[str]) -> TrainConfig:
    """Compose ``<config_dir>/<name>.yaml`` with Hydra overrides into a checked ``TrainConfig``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from methods.infvsr.training.config import register_schema

    register_schema()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return OmegaConf.to_object(compose(config_name=name, overrides=overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else exc
        lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip() and not ln.startswith(("full_key", "object_type"))]
        raise ConfigError(f"train {name}: {' '.join(lines[:2])}") from None
