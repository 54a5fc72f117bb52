"""InfVSR end to end: official-layout weight files load strictly, the pipeline reproduces the
fixture's output, and the streaming invariants hold (chunking, bounded caches, padding, scene cuts)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import INFVSR_REFERENCE

from infvsr_bench.errors import InfvsrError
from infvsr_bench.weights import WeightsFileError
from methods import build_method
from methods.infvsr.adapter import to_model_range, to_uint8
from methods.infvsr.dit import WanDiT, WanDiTConfig
from methods.infvsr.pipeline import InfVSRPipeline
from methods.infvsr.scenes import SceneChunker
from methods.infvsr.vae import WanVAE
from methods.infvsr.visual_encoder import SwinConfig, VisualEncoder

REF = INFVSR_REFERENCE


def _rule():
    spec = importlib.util.spec_from_file_location("infvsr_weights_rule", REF / "weights_rule.py")
    rule = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rule)
    return rule


@pytest.fixture(scope="module")
def fixture():
    from safetensors import safe_open

    with safe_open(str(REF / "fixture_tiny.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory, fixture) -> Path:
    """A weights folder whose infvsr/ holds the four files in the official layout (RAM under 'model'
    with extra keys, VAE under 'model_state'), built from weights_rule, plus the tiny DiT's config.json."""
    rule = _rule()
    root = tmp_path_factory.mktemp("weights")
    folder = root / "infvsr"
    folder.mkdir()
    torch.save(rule.make_state_dict(REF / "manifest_dit_tiny.txt"), folder / "InfVSR.ckpt")
    torch.save({"model_state": rule.make_state_dict(REF / "manifest_vae.txt")}, folder / "Wan2.1_VAE.pth")
    ram = rule.make_state_dict(REF / "manifest_ram_swin_l.txt")
    ram["tagging_head.weight"] = torch.zeros(2, 2)  # the loader keeps only encoder keys
    torch.save({"model": ram}, folder / "ram_swin_large_14m.pth")
    torch.save(rule.make_state_dict(REF / "manifest_dape.txt"), folder / "DAPE.pth")
    (folder / "config.json").write_text(json.dumps({"model_config": json.loads(fixture[1]["tiny_dit_config"])}))
    return root


@pytest.fixture(scope="module")
def infvsr(weights_folder):
    return build_method({"name": "infvsr", "weights_dir": str(weights_folder), "weights": "random",
                         "device": "cpu", "scene_detection": False})


@pytest.mark.slow
def test_official_layout_reproduces_the_fixture(infvsr, fixture):
    data = fixture[0]
    pipe = infvsr.pipeline
    pipe.reset()
    lr = data["input.lr"]
    out0 = pipe.process(lr[:, :, :9], new_scene=True)
    torch.testing.assert_close(pipe.context, data["reference.context"], atol=1e-4, rtol=0)
    out1 = pipe.process(lr[:, :, 9:], new_scene=False)
    torch.testing.assert_close(torch.cat([out0, out1], dim=2), data["output.sr"], atol=1e-3, rtol=0)
    assert pipe.state.start_frame == 6

    # The uint8 contract: the fixture's frames in, (x + 1) * 127.5 truncated out.
    frames = ((lr[0].permute(1, 2, 3, 0) + 1) / 2 * 255).round().to(torch.uint8).numpy()
    torch.testing.assert_close(to_model_range(frames), lr, atol=0, rtol=0)
    from methods import ClipInfo

    infvsr.reset(ClipInfo("fixture", 21, 16, 24, 25.0))
    got = np.concatenate([infvsr.process(frames[:5]), infvsr.process(frames[5:]), infvsr.flush()])
    expected = to_uint8(data["output.sr"])
    assert got.shape == (21, 64, 96, 3)
    assert np.abs(got.astype(int) - expected).max() <= 1  # truncation at an integer boundary only
    info = infvsr.info()
    assert info["weights"] == "random" and set(info["weights_sha256"]) == {
        "InfVSR.ckpt", "Wan2.1_VAE.pth", "ram_swin_large_14m.pth", "DAPE.pth"}
    assert info["timestep"] == 400.0 and info["sigma"] == pytest.approx(0.4008152484893799)
    assert info["effective_sigma"] == info["sigma"]  # float32 on the CPU: the exact value (bf16 runs: 0.400390625)


def test_missing_weights_name_every_file_and_source(tmp_path):
    with pytest.raises(InfvsrError) as err:
        build_method({"name": "infvsr", "weights_dir": str(tmp_path), "weights": "pretrained"})
    message = str(err.value)
    for name in ("InfVSR.ckpt", "Wan2.1_VAE.pth", "ram_swin_large_14m.pth", "DAPE.pth"):
        assert name in message
    assert "huggingface.co/zzqingz/InfVSR" in message and "Wan-AI/Wan2.1-T2V-1.3B" in message
    assert "SeeSR" in message and str(tmp_path / "infvsr") in message and "\n" not in message


def test_wrong_checkpoint_names_the_first_offending_keys(weights_folder, tmp_path):
    import shutil

    folder = tmp_path / "infvsr"
    shutil.copytree(weights_folder / "infvsr", folder)
    state = torch.load(folder / "InfVSR.ckpt", weights_only=True)
    del state["blocks.1.ffn.2.weight"]
    state["head.head.bias"] = torch.zeros(3)
    torch.save(state, folder / "InfVSR.ckpt")
    with pytest.raises(WeightsFileError, match=r"InfVSR.ckpt does not fit the model: 1 missing key\(s\), first "
                                              r"\['blocks.1.ffn.2.weight'\]; 1 wrong shape\(s\), first \['head.head.bias \[3\]"):
        build_method({"name": "infvsr", "weights_dir": str(tmp_path)})
    (folder / "DAPE.pth").write_bytes(b"not a checkpoint")
    torch.save(torch.load(weights_folder / "infvsr" / "InfVSR.ckpt", weights_only=True), folder / "InfVSR.ckpt")
    with pytest.raises(WeightsFileError, match="DAPE.pth: not a loadable checkpoint"):
        build_method({"name": "infvsr", "weights_dir": str(tmp_path)})


def _small_pipeline(seed: int = 0) -> InfVSRPipeline:
    """Tiny DiT + small VAE + small Swin with random weights: fast, same code paths."""
    torch.manual_seed(seed)
    dit = WanDiT(WanDiTConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=2, freq_dim=32))
    vae = WanVAE(base_dim=8)
    encoder = VisualEncoder(SwinConfig(img_size=64, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=4))
    encoder.init_buffers()
    for m in (dit, vae, encoder):
        for p in m.parameters():
            p.data.normal_(0, 0.05)
        m.eval()
    return InfVSRPipeline(dit, vae, encoder)


def _video(t: int, h: int, w: int, cut: int | None = None) -> np.ndarray:
    from skimage import data

    a, b = data.astronaut(), data.coffee()
    return np.stack([(b if cut is not None and i >= cut else a)[2 * i: 2 * i + h, i: i + w] for i in range(t)])


def _run(pipe: InfVSRPipeline, chunker: SceneChunker, video: np.ndarray, feed: int) -> tuple[np.ndarray, list]:
    pipe.reset()
    chunker.reset()
    outs, chunks = [], []
    for i in range(0, len(video), feed):
        chunks += chunker.push(video[i:i + feed])
    chunks += chunker.flush()
    for c in chunks:
        outs.append(to_uint8(pipe.process(to_model_range(c.frames), c.new_scene, c.update_reference)))
    return np.concatenate(outs), chunks


def test_feeding_in_any_pieces_gives_the_same_frames_and_sizes_are_restored():
    pipe = _small_pipeline()
    video = _video(23, 13, 21)  # odd size (pads to 64x96 HR... from 52x84) and a short last chunk
    one, chunks = _run(pipe, SceneChunker(detect=False), video, feed=23)
    pieces, _ = _run(pipe, SceneChunker(detect=False), video, feed=5)
    assert [len(c.frames) for c in chunks] == [9, 12, 2]
    assert one.shape == (23, 52, 84, 3)
    np.testing.assert_array_equal(one, pieces)


def test_cache_memory_does_not_grow_with_chunks():
    pipe = _small_pipeline()
    video = to_model_range(_video(9 + 12 * 5, 16, 16))
    pipe.reset()
    sizes = []
    pipe.process(video[:, :, :9], new_scene=True)
    for k in range(5):
        pipe.process(video[:, :, 9 + 12 * k: 21 + 12 * k], new_scene=False)
        sizes.append(pipe.cache_nbytes())
    assert sizes[0] > 0 and len(set(sizes)) == 1, sizes


def test_scene_cut_resets_caches_and_positions():
    pipe = _small_pipeline()
    video = _video(60, 16, 16, cut=30)
    out, chunks = _run(pipe, SceneChunker(detect=True), video, feed=7)
    starts = [(c.start, c.new_scene) for c in chunks]
    assert (30, True) in starts and [s for s, new in starts if new] == [0, 30]
    # After the cut, the output is exactly that of a fresh pipeline on the second scene.
    fresh, _ = _run(pipe, SceneChunker(detect=True), video[30:], feed=7)
    np.testing.assert_array_equal(out[30:], fresh)


@pytest.mark.slow
def test_run_command_with_infvsr(weights_folder, tmp_path):
    """`run method=infvsr` end to end through the runner, with the official-layout files present."""
    import pandas as pd
    from conftest import downscale, real_frames, write_clip

    from infvsr_bench.app.cli import main

    gt = real_frames(14, (64, 96))
    write_clip(tmp_path / "data" / "GT" / "clip.mkv", gt)
    write_clip(tmp_path / "data" / "LR" / "clip.mkv", downscale(gt))
    code = main(["run", "method=infvsr", f"method.weights_dir={weights_folder}", "method.weights=random",
                 "method.device=cpu", "method.scene_detection=false", "dataset=folder",
                 f"dataset.root={tmp_path / 'data'}", f"output_root={tmp_path / 'runs'}", "progress=false"])
    assert code == 0
    run = tmp_path / "runs" / "folder" / "infvsr"
    clips = pd.read_parquet(run / "clips.parquet")
    assert clips.loc[0, "frames"] == 14 and list(clips.loc[0, "chunk_starts"]) == [0, 9]
    record = json.loads((run / "run.json").read_text())
    assert record["method"]["weights"] == "random" and len(record["method"]["weights_sha256"]) == 4
