"""Semantic consistency metrics against independent references: the VBench formula in numpy,
brute-force frame-gap similarities, torch's own resize, and ImageNet labels of the shipped backbone."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import real_frames
from metric_tester import feed
from skimage import data

from infvsr_bench.metrics import build_metric
from infvsr_bench.metrics.features import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE0,
    FeatureBank,
    clip_preprocess,
    dino_preprocess,
    lite0_state_dict,
)
from infvsr_bench.metrics.semantic import boundary_discontinuity, slope_per_1000
from infvsr_bench.weights import WeightsMissingError

SMALL = {"gaps": [1, 2, 3, 5, 8], "ring_size": 4, "anchor_stride": 2, "reference_frames": 6}  # exercises ring + anchors


def vbench_numpy(feats: np.ndarray) -> tuple[np.ndarray, float]:
    """VBench's loop, written out: terms for i >= 1 and their mean."""
    d = feats.astype(np.float64)
    terms = [0.5 * (max(0.0, d[i - 1] @ d[i]) + max(0.0, d[0] @ d[i])) for i in range(1, len(d))]
    return np.asarray(terms), float(sum(terms) / (len(d) - 1))


def gap_bruteforce(feats: np.ndarray, gaps, ring: int, anchor: int):
    """Every pair for gaps <= ring, pairs starting on the anchor grid beyond."""
    d = feats.astype(np.float64)
    out = {}
    for dt in gaps:
        starts = [u for u in range(len(d) - dt) if dt <= ring or u % anchor == 0]
        out[dt] = (np.mean([d[u] @ d[u + dt] for u in starts]) if starts else np.nan, len(starts))
    return out


def test_preprocessing_follows_vbench():
    frame = torch.from_numpy(np.ascontiguousarray(data.astronaut()[:240, :320])).permute(2, 0, 1)[None]
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    dino = dino_preprocess(frame)
    assert dino.shape == (1, 3, 224, 298)  # shorter side 224, longer int(320 * 224 / 240), no crop
    # VBench's load_video gives float32 frames (torch.Tensor of the uint8 array): resized as floats, never rounded
    ref = F.interpolate(frame.float(), size=(224, 298), mode="bilinear", align_corners=False) / 255
    torch.testing.assert_close(dino, (ref - mean) / std, atol=1e-6, rtol=0)

    clip = clip_preprocess(frame)
    assert clip.shape == (1, 3, 224, 224)
    ref = F.interpolate(frame.float(), size=(224, 298), mode="bicubic", align_corners=False)  # overshoot kept
    assert ref.min() < 0 or ref.max() > 255  # this frame overshoots: a uint8 resize would clamp it
    ref = ref[..., 37:261] / 255  # centre crop: (298 - 224) / 2 = 37 columns off each side
    mean, std = torch.tensor(CLIP_MEAN)[:, None, None], torch.tensor(CLIP_STD)[:, None, None]
    torch.testing.assert_close(clip, (ref - mean) / std, atol=1e-6, rtol=0)


@pytest.mark.parametrize("backbone", ["dino", "clip"])
def test_missing_weights_raise_fast(backbone, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("INFVSR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    column = {"dino": "subject_consistency", "clip": "background_consistency"}[backbone]
    start = time.perf_counter()
    with pytest.raises(WeightsMissingError, match=str(tmp_path / "weights")):
        build_metric(column, {})
    assert time.perf_counter() - start < 0.5


def test_offline_backbone_loads_shipped_weights(monkeypatch):
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the mapped checkpoint classifies real photographs correctly (ImageNet labels)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(lite0_state_dict(model, LITE0.shipped_path()))
    images = [data.chelsea(), data.coffee()]
    x = torch.stack([F.interpolate(torch.from_numpy(i).permute(2, 0, 1)[None].float(), size=(224, 224),
                                   mode="bilinear", antialias=True)[0] for i in images]) / 127.5 - 1
    with torch.no_grad():
        top = model(x).argmax(1).tolist()
    assert 281 <= top[0] <= 285  # a domestic cat
    assert top[1] == 967  # espresso

    metric = build_metric("semantic_offline", {})
    assert metric.weights == "shipped"
    assert metric.weights_sha256 == {"efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"}
    astro = data.astronaut()
    frames = np.stack([astro[:160, :160], astro[6:166, 8:168], data.coffee()[:160, :160]])
    f = metric.bank.embed(frames)
    assert np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    same, different = f[0] @ f[1], f[0] @ f[2]
    assert same > 0.8 and different < 0.6 and same > different + 0.3


@pytest.mark.parametrize("column,frames", [("semantic_offline", 12), ("subject_consistency", 5), ("background_consistency", 8)])
def test_consistency_equals_vbench_formula(column, frames):
    metric = build_metric(column, {"weights": "auto" if column == "semantic_offline" else "random"})
    video = real_frames(frames, (64, 80), seed=1)
    result = feed(metric, video, lengths=[3, frames - 3], layout=[0])
    feats = metric.bank.embed(video)
    terms, score = vbench_numpy(feats)
    assert result.scalars[column] == pytest.approx(score, abs=1e-6)
    np.testing.assert_allclose(result.frames[column].to_numpy()[1:], terms, atol=1e-6)
    assert np.isnan(result.frames[column].iloc[0]) and result.frames["frame"].tolist() == list(range(frames))
    assert metric.weights == ("shipped" if column == "semantic_offline" else "random")


def test_streaming_matches_one_chunk_and_bruteforce_gaps():
    video = real_frames(20, (64, 64), seed=2)
    gt = video[:, ::-1].copy()  # mirrored: a different but related "ground truth"
    metric = build_metric("semantic_offline", SMALL)
    whole = feed(metric, video, gt, [20], layout=[0, 8, 16])
    parts = feed(metric, video, gt, [3, 1, 7, 9], layout=[0, 8, 16])
    # features of a frame differ by float32 rounding between batch sizes; the boundary ratio divides
    # two (1 - cos) of ~0.02 and so magnifies that, hence a relative tolerance there
    for key, value in whole.scalars.items():
        assert parts.scalars[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    np.testing.assert_allclose(parts.frames.drop(columns="frame").to_numpy(), whole.frames.drop(columns="frame").to_numpy(), atol=1e-6)
    np.testing.assert_allclose(parts.curves["value"], whole.curves["value"], rtol=1e-5, atol=1e-6)
    assert parts.curves[["curve", "x", "count"]].equals(whole.curves[["curve", "x", "count"]])

    feats = metric.bank.embed(video)
    gaps = whole.curves[whole.curves.curve == "sim_gap"].set_index("x")
    for dt, (mean, count) in gap_bruteforce(feats, SMALL["gaps"], SMALL["ring_size"], SMALL["anchor_stride"]).items():
        assert gaps.loc[dt, "count"] == count and gaps.loc[dt, "value"] == pytest.approx(mean, abs=1e-6)
    ref = feats[:6].astype(np.float64).mean(0)
    sim_ref = whole.curves[whole.curves.curve == "sim_reference"]["value"].to_numpy()
    np.testing.assert_allclose(sim_ref, feats @ ref / np.linalg.norm(ref), atol=1e-6)
    fidelity = np.einsum("ij,ij->i", feats.astype(np.float64), metric.bank.embed(gt).astype(np.float64))
    np.testing.assert_allclose(whole.frames["semantic_offline_fidelity"], fidelity, atol=1e-6)
    assert whole.scalars["semantic_offline_fidelity_slope"] == pytest.approx(1000 * np.polyfit(np.arange(20), fidelity, 1)[0], abs=1e-6)


def test_static_video_gap_curve_is_flat():
    video = np.repeat(real_frames(1, (64, 64))[:1], 14, axis=0)
    result = feed(build_metric("semantic_offline", SMALL), video, lengths=[5, 9], layout=[0, 7])
    gaps = result.curves[result.curves.curve == "sim_gap"]
    np.testing.assert_allclose(gaps["value"], 1.0, atol=1e-6)
    assert gaps["count"].tolist() == [13, 12, 11, 5, 3]  # exact up to the ring (4), anchors on even frames beyond
    assert result.scalars["semantic_offline"] == pytest.approx(1.0, abs=1e-6)
    assert result.scalars["semantic_offline_boundary"] == 1.0


def test_boundary_discontinuity_detects_inconsistent_chunks():
    video = real_frames(32, (96, 128))
    shifted = video.astype(np.int16)
    for k, c in enumerate(range(0, 32, 8)):  # each chunk of 8 frames gets its own colour cast
        shifted[c: c + 8] += np.array([40, -20, -40] if k % 2 else [-40, 20, 40], np.int16)
    shifted = np.clip(shifted, 0, 255).astype(np.uint8)
    metric = build_metric("semantic_offline", {})
    starts = [0, 8, 16, 24]
    smooth = feed(metric, video, lengths=[8, 8, 8, 8], layout=starts).scalars["semantic_offline_boundary"]
    jumpy = feed(metric, shifted, lengths=[8, 8, 8, 8], layout=starts)
    assert 0.8 < smooth < 1.25
    assert jumpy.scalars["semantic_offline_boundary"] > 3
    assert jumpy.curves[jumpy.curves.curve == "boundary"]["x"].tolist() == [8, 16, 24]


def test_boundary_and_slope_helpers_on_known_values():
    frames = np.array([0, 2, 4, 6, 8])
    sims = np.array([np.nan, 0.9, 0.5, 0.9, 0.9])  # pair (2, 4) crosses the start at 3
    ratio, at, per = boundary_discontinuity(frames, sims, [0, 3])
    assert ratio == pytest.approx(0.5 / 0.1) and at.tolist() == [3] and per == pytest.approx([5.0])
    assert slope_per_1000(np.arange(10), 0.5 - 0.002 * np.arange(10)) == pytest.approx(-2.0)


def test_metrics_share_one_forward_per_chunk():
    video = real_frames(6, (64, 64))
    strided = {"stride": 2, "anchor_stride": 8}
    a, b, c = (build_metric("semantic_offline", o) for o in ({}, strided, strided))
    calls = []
    hook = a.bank.net.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    try:
        for m in (a, b, c):
            m.update(video, None, 0)
        assert calls == [6, 3]  # one forward per (chunk, stride), shared by every metric
        assert b.compute().frames["frame"].tolist() == [0, 2, 4]
        a.update(video.copy(), None, 6)  # another array: computed, never confused with the last one
        assert calls == [6, 3, 6]
        c.reset()  # a new clip restarts frame indices: nothing is served from the last clip
        c.update(video, None, 0)
        assert calls == [6, 3, 6, 3]
    finally:
        hook.remove()


def test_dino_loads_weights_from_the_weights_folder(tmp_path):
    from safetensors.torch import save_file

    random_bank = FeatureBank.get("dino", "cpu", weights="random")
    folder = tmp_path / "dino_vitb16"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in random_bank.net.vit.state_dict().items()}, folder / "model.safetensors")
    metric = build_metric("subject_consistency", {"weights_dir": str(tmp_path), "device": "cpu"})
    assert metric.weights == "pretrained" and set(metric.weights_sha256) == {"model.safetensors"}
    assert metric.info()["backbone"]["pos_embed"].startswith("DINO interpolate_pos_encoding")
    frames = real_frames(2, (64, 64))
    np.testing.assert_allclose(metric.bank.embed(frames), random_bank.embed(frames), atol=1e-5)


def scenes(num_frames: int, cuts: list[int], size: int = 64) -> np.ndarray:
    """Shots of different scikit-image photographs, each panning a pixel a frame, changing exactly at ``cuts``."""
    from skimage.transform import resize

    photos = [(resize(p, (size + num_frames, size + num_frames)) * 255).astype(np.uint8)
              for p in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]
    shot = np.searchsorted(sorted(cuts), np.arange(num_frames), side="right")
    return np.stack([photos[s % len(photos)][t:t + size, t:t + size] for t, s in enumerate(shot)])


def infvsr_starts(num_frames: int, cuts: list[int]) -> list[int]:
    """Chunk starts of InfVSR's plan: 9 frames at a shot's start, then 12, a new chunk at every cut."""
    starts, start, length = [], 0, 9
    while start < num_frames:
        starts.append(start)
        nxt = min([c for c in cuts if start < c < start + length] + [start + length])
        start, length = nxt, 9 if nxt in cuts else 12
    return starts


def with_seams(video: np.ndarray, starts: list[int], step: int = 24) -> np.ndarray:
    """A brightness step at every chunk start: chunks alternate between -step and +step."""
    out = video.astype(np.int16)
    for k, (a, b) in enumerate(zip(starts, [*starts[1:], len(video)])):
        out[a:b] += step if k % 2 else -step
    return np.clip(out, 0, 255).astype(np.uint8)


def lockstep(metrics_and_inputs, chunk: int = 20) -> None:
    """Stream each (metric, sr, gt) chunk by chunk, all in step, each array sliced once per chunk so the
    backbone runs once per array and chunk (metrics were reset by the caller)."""
    n = len(metrics_and_inputs[0][1])
    for i in range(0, n, chunk):
        part = {id(a): a[i:i + chunk] for _, sr, gt in metrics_and_inputs for a in (sr, gt) if a is not None}
        for m, sr, gt in metrics_and_inputs:
            m.update(part[id(sr)], None if gt is None else part[id(gt)], i)


def boundary(metric, starts) -> float:
    metric.set_chunk_starts(starts)
    return metric.compute().scalars[f"{metric.column}_boundary"]


def test_scene_cuts_leave_the_boundary_ratio_alone():
    """Issue #12.13: cuts inside chunks inflated the denominator (invisible seams < 1) and a chunk at
    each cut made cuts look like seams (>> 1); with cut transitions left out of both sides, invisible
    seams score ~1 in both layouts and visible seams stand out in both."""
    n, cuts = 96, [26, 50, 75]
    video = scenes(n, cuts, size=96)
    fixed, at_cuts = list(range(0, n, 12)), infvsr_starts(n, cuts)
    assert set(cuts) <= set(at_cuts) and not set(cuts) & set(fixed)
    build = lambda mode: build_metric("semantic_offline", {"scene_cuts": mode})
    known, on_gt, on_sr, kept = build("auto"), build("auto"), build("detect"), build("none")
    for m in (known, on_gt, on_sr, kept):
        m.reset()
    known.set_scene_cuts(cuts)  # as the runner does after reset for a dataset that records its cuts
    lockstep([(known, video, video), (on_gt, video, video), (on_sr, video, None), (kept, video, video)])
    assert known._cut_detector.next_frame == 0  # known cuts: nothing detected
    for name, metric in (("dataset cuts", known), ("detected on GT", on_gt), ("detected on output", on_sr)):
        for layout, starts in (("fixed", fixed), ("chunk at each cut", at_cuts)):
            assert 0.8 < boundary(metric, starts) < 1.25, (name, layout)
        assert metric.compute().curves.query("curve == 'scene_cut'")["x"].tolist() == cuts, name
    # the old definition (cuts kept in) shows the artefact the issue measured: 0.38 and 14.4 here
    assert boundary(kept, fixed) < 0.8 and boundary(kept, at_cuts) > 2

    seams = with_seams(video, at_cuts)  # visible seams, in the layout that starts a chunk at every cut
    metric = build("auto")
    metric.reset()
    metric.set_scene_cuts(cuts)
    lockstep([(metric, seams, None)])
    assert boundary(metric, at_cuts) > 2


def test_streamed_detection_matches_pyscenedetect(tmp_path):
    from conftest import write_clip
    from scenedetect import ContentDetector, detect

    from infvsr_bench.metrics.scene_cuts import SceneCutDetector

    cuts = [20, 41, 70]
    video = scenes(90, cuts, size=48)
    path = write_clip(tmp_path / "shots.mkv", video)
    reference = [s.frame_num for s, _ in detect(str(path), ContentDetector())[1:]]  # PySceneDetect's own reading
    streamed = SceneCutDetector()
    for i in range(0, 90, 7):
        streamed.push(video[i:i + 7], i)
    assert streamed.cuts == reference == cuts
    with pytest.raises(ValueError, match="consecutive"):
        streamed.push(video[:3], 95)


def test_boundary_leaves_cut_transitions_out_on_known_values():
    frames = np.arange(8)
    gap = np.array([np.nan, 0.1, 0.1, 0.5, 0.1, 0.9, 0.1, 0.3])  # 1 - cos of pairs (t-1, t)
    # chunks start at 3 and 6, a shot starts at 5: pair (4, 5) is a cut transition, out of both means
    ratio, at, per = boundary_discontinuity(frames, 1 - gap, [0, 3, 6], cuts=[5])
    inside = np.mean([0.1, 0.1, 0.1, 0.3])  # pairs ending at 1, 2, 4, 7
    assert ratio == pytest.approx(np.mean([0.5, 0.1]) / inside) and at.tolist() == [3, 6]
    assert per == pytest.approx([0.5 / inside, 0.1 / inside])
    # a chunk starting on the cut: that boundary is the cut, so it is not a seam either
    ratio, at, _ = boundary_discontinuity(frames, 1 - gap, [0, 3, 5], cuts=[5])
    assert at.tolist() == [3] and ratio == pytest.approx(0.5 / np.mean([0.1, 0.1, 0.1, 0.1, 0.3]))
    assert np.isnan(boundary_discontinuity(frames, 1 - gap, None)[0])  # layout unknown: not applicable


# --- VBench conformance: an independent re-implementation of VBench's procedure -------------------------
# VBench: Vchitect/VBench@45e79ec14e69a2187202c675d2dbce1a71843d53
#   vbench/utils.py load_video: decord frames -> torch.Tensor(uint8 array), i.e. float32 0..255, (T,C,H,W);
#     dino_transform(224) = Resize(224, antialias=False) (bilinear), x.float().div(255), Normalize(ImageNet);
#     clip_transform(224) = Resize(224, BICUBIC, antialias=False), CenterCrop(224), x.float().div(255), Normalize(CLIP).
#   vbench/subject_consistency.py: DINO on one frame at a time; vbench/background_consistency.py: CLIP
#     encode_image on all frames at once; both F.normalize, then for i >= 1
#     (max(0, cos(prev, cur).item()) + max(0, cos(first, cur).item())) / 2, summed, / (T - 1).
#   init_submodules: DINO from torch.hub facebookresearch/dino:main dino_vitb16, CLIP by clip.load('ViT-B/32')
#     (openai/CLIP@d05afc436d78f1c48dc0dbf8e5980a9d471f35f6 clip/clip.py: fp16 on CUDA, model.float() on CPU).
# DINO: facebookresearch/dino@7c446df5b9f45747937fb0d72314eb9f7b66930a vision_transformer.py
#   VisionTransformer.prepare_tokens / interpolate_pos_encoding, Block, Attention (written out below).


def vbench_resize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """torchvision Resize(224, antialias=False) on a float tensor: shorter side 224, longer int(224 * long / short)."""
    h, w = x.shape[-2:]
    size = [224, int(224 * w / h)] if h <= w else [int(224 * h / w), 224]
    if [h, w] == size:
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=False)


def vbench_frames(video: np.ndarray) -> torch.Tensor:
    return torch.Tensor(video).permute(0, 3, 1, 2)  # load_video: float32 0..255


def vbench_normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x.float().div(255.0) - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


FEATURE_ATOL = 2e-6  # unit features; a uint8 resize moved them by 1.3e-4-1.8e-4, timm's pos-embed resampling by 6e-5


def dino_reference(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """DINO's VisionTransformer.forward (ViT-B/16: 12 blocks, 12 heads, LayerNorm eps 1e-6), written out."""
    B, _, w, h = x.shape  # DINO's names: w is the height, h the width
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=16).flatten(2).transpose(1, 2)
    t = torch.cat((sd["cls_token"].expand(B, -1, -1), t), dim=1)
    # interpolate_pos_encoding
    npatch, N, dim = t.shape[1] - 1, sd["pos_embed"].shape[1] - 1, t.shape[-1]
    if npatch == N and w == h:
        pos = sd["pos_embed"]
    else:
        w0, h0 = w // 16 + 0.1, h // 16 + 0.1
        grid = sd["pos_embed"][:, 1:].reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode="bicubic")
        assert int(w0) == grid.shape[-2] and int(h0) == grid.shape[-1]
        pos = torch.cat((sd["pos_embed"][:, 0].unsqueeze(0), grid.permute(0, 2, 3, 1).view(1, -1, dim)), dim=1)
    t = t + pos
    ln = lambda y, p: F.layer_norm(y, (dim,), sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)
    lin = lambda y, p: F.linear(y, sd[p + ".weight"], sd[p + ".bias"])
    for i in range(12):
        b = f"blocks.{i}."
        n = t.shape[1]
        qkv = lin(ln(t, b + "norm1"), b + "attn.qkv").reshape(B, n, 3, 12, dim // 12).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (dim // 12) ** -0.5).softmax(dim=-1)
        t = t + lin((attn @ v).transpose(1, 2).reshape(B, n, dim), b + "attn.proj")
        t = t + lin(F.gelu(lin(ln(t, b + "norm2"), b + "mlp.fc1")), b + "mlp.fc2")
    return ln(t, "norm")[:, 0]


def vbench_score(features: list[torch.Tensor]) -> tuple[np.ndarray, list[float], float]:
    """The loop of subject_consistency / background_consistency on (1, D) features, in Python floats;
    also returns the normalised features."""
    terms, unit, first, former = [], [], None, None
    for i, feat in enumerate(features):
        feat = F.normalize(feat, dim=-1, p=2)
        unit.append(feat[0].numpy())
        if i == 0:
            first = feat
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, feat).item())
            sim_fir = max(0.0, F.cosine_similarity(first, feat).item())
            terms.append((sim_pre + sim_fir) / 2)
        former = feat
    return np.stack(unit), terms, sum(terms) / (len(features) - 1)


def vbench_subject_consistency(sd: dict, video: np.ndarray) -> tuple[np.ndarray, list[float], float]:
    images = vbench_normalise(vbench_resize(vbench_frames(video), "bilinear"), IMAGENET_MEAN, IMAGENET_STD)
    with torch.no_grad():
        return vbench_score([dino_reference(sd, images[i].unsqueeze(0)) for i in range(len(images))])


def vbench_background_consistency(sd: dict, video: np.ndarray, half: bool = False) -> tuple[np.ndarray, list[float], float]:
    """``half``: the model as clip.load builds it on CUDA (build_model's convert_weights, no model.float())."""
    import clip.model  # OpenAI's reference CLIP code (the `clip` package VBench loads its model with)

    visual = clip.model.VisionTransformer(input_resolution=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512)
    visual.load_state_dict(sd)
    if half:
        clip.model.convert_weights(visual)
    images = vbench_resize(vbench_frames(video), "bicubic")
    h, w = images.shape[-2:]
    top, left = round((h - 224) / 2.0), round((w - 224) / 2.0)  # CenterCrop(224): int(round(...))
    images = vbench_normalise(images[..., top:top + 224, left:left + 224], CLIP_MEAN, CLIP_STD)
    with torch.no_grad():
        feats = visual.eval()(images.type(visual.conv1.weight.dtype))  # encode_image: image.type(self.dtype)
    return vbench_score([feats[i].unsqueeze(0) for i in range(len(feats))])


@pytest.mark.parametrize("column", ["subject_consistency", "background_consistency"])
@pytest.mark.parametrize("size", [(240, 320), (224, 224), (135, 240)])
def test_consistency_equals_vbench_procedure(column, size):
    """Issue #21.4: our column equals VBench's procedure run on the same frames with the same weights."""
    metric = build_metric(column, {"weights": "random", "device": "cpu"})
    net = metric.bank.net
    sd = {k: v.detach().clone() for k, v in (net.vit if column == "subject_consistency" else net.visual).state_dict().items()}
    video = real_frames(3, size, seed=3)
    reference = {"subject_consistency": vbench_subject_consistency, "background_consistency": vbench_background_consistency}[column]
    feats, terms, score = reference(sd, video)
    result = feed(metric, video, lengths=[2, 1])
    np.testing.assert_allclose(metric.bank.embed(video), feats, atol=FEATURE_ATOL, rtol=0)
    np.testing.assert_allclose(result.frames[column].to_numpy()[1:], terms, atol=1e-6, rtol=0)
    assert abs(result.scalars[column] - score) <= 1e-6, (result.scalars[column], score)


def test_background_consistency_float16_equals_vbench_procedure():
    """CLIP in float16 (VBench on CUDA: OpenAI's fp16 weights, LayerNorm in float32, features normalised and
    compared in float16) equals VBench's procedure with OpenAI's own fp16 model, here run on the CPU."""
    metric = build_metric("background_consistency", {"weights": "random", "device": "cpu", "precision": "float16"})
    assert metric.info()["settings"]["precision"] == "float16" and metric.info()["backbone"]["precision"] == "float16"
    sd = {k: v.float() for k, v in build_metric("background_consistency", {"weights": "random", "device": "cpu"})
          .bank.net.visual.state_dict().items()}  # the same random weights, in float32 as the reference loads them
    video = real_frames(3, (240, 320), seed=3)
    feats, terms, score = vbench_background_consistency(sd, video, half=True)
    result = feed(metric, video, lengths=[2, 1])
    ours = metric.bank.embed(video)
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, feats)  # bit for bit (torch's fused attention path would move 2 ulps)
    np.testing.assert_allclose(result.frames["background_consistency"].to_numpy()[1:], terms, atol=1e-6, rtol=0)
    assert abs(result.scalars["background_consistency"] - score) <= 1e-6


def test_clip_precision_is_vbench_by_device(monkeypatch):
    """The protocol default runs CLIP as VBench's clip.load does on the device: float16 on CUDA, float32 on the
    CPU; the precision that ran is what the settings record (no GPU here: the choice, not a CUDA run)."""
    from infvsr_bench.errors import ConfigError
    from infvsr_bench.metrics import semantic

    assert semantic.clip_precision("vbench", torch.device("cuda", 0)) == "float16"
    assert semantic.clip_precision("vbench", torch.device("cpu")) == "float32"
    assert semantic.clip_precision("float32", torch.device("cuda")) == "float32"
    from omegaconf import OmegaConf

    from infvsr_bench.app.cli import compose

    options = OmegaConf.to_container(compose(["metrics=[background_consistency]"])["metrics"]["background_consistency"])
    assert options["precision"] == "vbench"  # the protocol default a user gets
    cpu = build_metric("background_consistency", {**options, "weights": "random", "device": "cpu"})
    assert cpu.info()["settings"]["precision"] == "float32" and cpu.bank.net.visual.conv1.weight.dtype == torch.float32

    assert build_metric("subject_consistency", {"weights": "random"}).bank.backbone.info["precision"] == "float32"

    asked, get = [], FeatureBank.get

    def bank_on_cpu(backbone, device, **options):  # records what the metric asks for on CUDA, builds it on the CPU
        asked.append((str(device), options["precision"]))
        return get(backbone, "cpu", **options)

    monkeypatch.setattr(semantic, "resolve_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(semantic.FeatureBank, "get", bank_on_cpu)
    on_cuda = build_metric("background_consistency", {"weights": "random", "device": "auto"})
    assert asked == [("cuda:0", "float16")] and on_cuda.info()["settings"]["precision"] == "float16"
    visual = on_cuda.bank.net.visual
    assert visual.conv1.weight.dtype == torch.float16 and visual.ln_pre.weight.dtype == torch.float32
    with pytest.raises(ConfigError, match="precision"):
        build_metric("background_consistency", {"precision": "fp8"})
