"""InfVSR's chunk plan around scene cuts (notes §7) and the bf16 sigma (notes §2), against the
authors' rules written out independently here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.infvsr.scenes import SceneChunker
from methods.infvsr.schedule import effective_sigma, restore_latents, sigma_for_timestep


def official_plan(num_frames: int, cuts: list[int]) -> list[tuple[int, int, bool]]:
    """(start, length, new_scene) per chunk as the authors' ``scene_batches`` loop makes them: a cut at
    the chunk's start begins a scene (9 frames), else 12; a chunk ends early at the next cut."""
    plan, start, new, pending = [], 0, True, sorted(cuts)
    while start < num_frames:
        while pending and pending[0] < start:
            pending.pop(0)
        if pending and pending[0] == start:
            pending.pop(0)
            new = True
        end = min(start + (9 if new else 12), num_frames)
        inside = [c for c in pending if start < c < end]
        end = inside[0] if inside else end
        plan.append((start, end - start, new))
        start, new = end, False
    return plan


def video_with_cuts(num_frames: int, cuts: list[int], size: int = 64) -> np.ndarray:
    """Scenes of different scikit-image photographs, panning by a pixel a frame, changing exactly at ``cuts``."""
    from skimage import data
    from skimage.transform import resize

    photos = [(resize(p, (size + num_frames, size + num_frames)) * 255).astype(np.uint8)
              for p in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]
    scene = np.searchsorted(sorted(cuts), np.arange(num_frames), side="right")
    return np.stack([photos[s % len(photos)][t:t + size, t:t + size] for t, s in enumerate(scene)])


def chunker_plan(video: np.ndarray, feed: int) -> list[tuple[int, int, bool]]:
    chunker, chunks = SceneChunker(detect=True), []
    for i in range(0, len(video), feed):
        chunks += chunker.push(video[i:i + feed])
    chunks += chunker.flush()
    return [(c.start, len(c.frames), c.new_scene) for c in chunks]


# 21, 33, 45 and 57 end chunks of the plan without cuts, 54 = 21 + 9 + 12 + 12 one after a cut at 21:
# cuts on chunk boundaries; 20, 50 and 45 after a cut at 21 fall inside chunks.
CUT_SETS = [[21], [33], [21, 54], [20, 50], [21, 45], [45], [9 + 12 * 4]]


@pytest.mark.parametrize("cuts", CUT_SETS, ids=[",".join(map(str, c)) for c in CUT_SETS])
@pytest.mark.parametrize("feed", [1, 5, 12, 17, 200])
def test_cuts_on_and_off_chunk_boundaries_start_a_scene(cuts, feed):
    n = 80
    video = video_with_cuts(n, cuts)
    plan = chunker_plan(video, feed)
    assert plan == official_plan(n, cuts)
    starts = {s for s, _, new in plan if new}
    assert starts == {0, *cuts}  # every cut starts a scene, on a boundary or not


def test_official_plan_reference_on_hand_cases():
    assert official_plan(40, []) == [(0, 9, True), (9, 12, False), (21, 12, False), (33, 7, False)]
    assert official_plan(40, [21]) == [(0, 9, True), (9, 12, False), (21, 9, True), (30, 10, False)]
    assert official_plan(40, [20]) == [(0, 9, True), (9, 11, False), (20, 9, True), (29, 11, False)]


def test_bf16_runs_use_the_authors_bf16_sigma():
    sigma = sigma_for_timestep(400.0)
    assert effective_sigma(sigma, torch.float32) == sigma == 0.4008152484893799
    assert effective_sigma(sigma, torch.bfloat16) == 0.400390625
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, 3, 8, 8, generator=g).bfloat16()
    pred = torch.randn(1, 16, 3, 8, 8, generator=g).bfloat16()
    # The CUDA kernel: sigma cast to bf16, the product rounded to bf16 (exact in float64 first), then
    # the difference rounded to bf16.
    product = (pred.double() * 0.400390625).bfloat16()
    expected = (latents.double() - product.double()).bfloat16()
    got = restore_latents(latents, pred, sigma)
    assert got.dtype == torch.bfloat16 and torch.equal(got, expected)
    exact = (latents.double() - (pred.double() * sigma).bfloat16().double()).bfloat16()
    assert (got != exact).float().mean() > 0.01  # the value matters: about 7% of elements differ
    f32 = restore_latents(latents.float(), pred.float(), sigma)
    assert torch.equal(f32, latents.float() - sigma * pred.float())  # float32 runs: the exact value
