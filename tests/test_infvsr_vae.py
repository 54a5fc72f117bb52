"""Wan2.1 causal VAE: checkpoint layout, streamed parity with the official pipeline, bounded caches, tiling."""

from __future__ import annotations

import copy
import importlib.util
import shutil

import pytest
import torch
from conftest import INFVSR_REFERENCE

from methods.infvsr.vae import (
    CONV_FORMS,
    RMSNorm,
    StreamCache,
    TileConfig,
    WanVAE,
    _NearestUp2x,
    blend_mask,
    tile_boxes,
)

REF = INFVSR_REFERENCE
MANIFEST = REF / "manifest_vae.txt"
FIXTURE = REF / "fixture_tiny.safetensors"


def _manifest() -> list[tuple[str, list[int]]]:
    entries = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, shape = line.split("\t")
            entries.append((key, [int(v) for v in shape.strip("[]").split(",") if v.strip()]))
    return entries


@pytest.fixture(scope="module")
def full_vae() -> WanVAE:
    """Full-size VAE with the deterministic synthetic weights the fixture was produced with."""
    spec = importlib.util.spec_from_file_location("infvsr_weights_rule", REF / "weights_rule.py")
    rule = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rule)
    vae = WanVAE()
    vae.load_state_dict(rule.make_state_dict(MANIFEST), strict=True)
    return vae.eval()


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    """The official pipeline's recorded intermediates."""
    from safetensors.torch import load_file

    return load_file(FIXTURE)


@pytest.fixture(scope="module")
def decoded_chunk0(full_vae: WanVAE, ref: dict[str, torch.Tensor]) -> tuple[torch.Tensor, StreamCache]:
    """Frames of chunk 0 decoded from a fresh cache, and that cache (carried into chunk 1)."""
    cache = StreamCache()
    return full_vae.decode_chunk(ref["chunk0.restored"], cache), cache


def test_state_dict_matches_checkpoint_manifest() -> None:
    with torch.device("meta"):
        vae = WanVAE()
    got = [(k, list(v.shape)) for k, v in vae.state_dict().items()]
    assert got == _manifest()


@pytest.mark.slow
def test_streamed_encoding_matches_official(full_vae: WanVAE, ref: dict[str, torch.Tensor]) -> None:
    cache = StreamCache()
    z0 = full_vae.encode_chunk(ref["chunk0.hr_input"], cache, first_chunk=True)
    z1 = full_vae.encode_chunk(ref["chunk1.hr_input"], cache, first_chunk=False)
    torch.testing.assert_close(z0, ref["chunk0.latents"], atol=1e-4, rtol=0)
    torch.testing.assert_close(z1, ref["chunk1.latents"], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_streamed_decoding_first_chunk_matches_official(
    decoded_chunk0: tuple[torch.Tensor, StreamCache], ref: dict[str, torch.Tensor]
) -> None:
    frames, _ = decoded_chunk0
    assert frames.shape == (1, 3, 9, 64, 96)
    torch.testing.assert_close(frames, ref["output.sr"][:, :, :9], atol=1e-3, rtol=0)


@pytest.mark.slow
def test_streamed_decoding_second_chunk_matches_official(
    full_vae: WanVAE, decoded_chunk0: tuple[torch.Tensor, StreamCache], ref: dict[str, torch.Tensor]
) -> None:
    cache = copy.deepcopy(decoded_chunk0[1])
    frames = full_vae.decode_chunk(ref["chunk1.restored"], cache)
    assert frames.shape == (1, 3, 12, 64, 96)
    torch.testing.assert_close(frames, ref["output.sr"][:, :, 9:], atol=1e-3, rtol=0)


def _small_vae(**kwargs) -> WanVAE:
    torch.manual_seed(0)
    return WanVAE(base_dim=8, **kwargs).eval()


def _smooth_video(t: int, h: int, w: int) -> torch.Tensor:
    """[1,3,t,h,w] in [-1,1]: slow gradients and waves drifting over time (spatially smooth)."""
    axes = torch.arange(t, dtype=torch.float32), torch.linspace(0, 1, h), torch.linspace(0, 1, w)
    tt, yy, xx = torch.meshgrid(*axes, indexing="ij")
    chans = [torch.sin(3.0 * xx + 0.2 * tt), torch.cos(2.0 * yy - 0.1 * tt), 0.8 * (xx - yy)]
    return torch.stack(chans)[None] * 0.9


def test_cache_memory_is_bounded_and_chunking_is_seamless() -> None:
    vae = _small_vae()
    video = _smooth_video(21, 32, 32)
    enc, dec = StreamCache(), StreamCache()
    latents, enc_bytes, dec_bytes = [], [], []
    for i, (a, b) in enumerate([(0, 5), (5, 13), (13, 17), (17, 21)]):
        z = vae.encode_chunk(video[:, :, a:b], enc, first_chunk=i == 0)
        frames = vae.decode_chunk(z, dec)
        assert z.shape == (1, 16, (b - a + 3) // 4, 4, 4) and frames.shape == (1, 3, b - a, 32, 32)
        assert frames.abs().max() <= 1
        latents.append(z)
        enc_bytes.append(enc.nbytes())
        dec_bytes.append(dec.nbytes())
    assert len(set(enc_bytes[1:])) == 1 and len(set(dec_bytes[1:])) == 1, (enc_bytes, dec_bytes)
    assert all(s == "Rep" if isinstance(s, str) else s.shape[2] <= 2 for s in enc.slots + dec.slots)
    # Carrying the cache across chunks equals encoding the whole clip as one first chunk.
    whole = vae.encode_chunk(video, StreamCache(), first_chunk=True)
    torch.testing.assert_close(torch.cat(latents, dim=2), whole, atol=1e-5, rtol=0)


def test_chunk_rules_are_enforced() -> None:
    vae = _small_vae()
    cache = StreamCache()
    with pytest.raises(ValueError, match="1 mod 4"):
        vae.encode_chunk(_smooth_video(8, 16, 16), cache, first_chunk=True)
    with pytest.raises(ValueError, match="fresh"):
        vae.encode_chunk(_smooth_video(8, 16, 16), cache, first_chunk=False)
    vae.encode_chunk(_smooth_video(5, 16, 16), cache, first_chunk=True)
    with pytest.raises(ValueError, match="0 mod 4"):
        vae.encode_chunk(_smooth_video(5, 16, 16), cache, first_chunk=False)


def test_tile_blend_weights_sum_to_one() -> None:
    size, stride, ramp, h, w = 12, 8, 4, 20, 27
    boxes = tile_boxes(h, w, size, stride)
    assert [b[:2] for b in boxes[::3]] == [(0, 12), (8, 20)]
    assert [b[2:] for b in boxes[:3]] == [(0, 12), (8, 20), (16, 27)]
    total = torch.zeros(h, w)
    placed = []
    for h0, h1, w0, w1 in boxes:
        mask = blend_mask(h1 - h0, w1 - w0, (h0 == 0, h1 == h, w0 == 0, w1 == w), ramp)
        assert mask.min() > 0 and mask.max() == 1
        full = torch.zeros(h, w)
        full[h0:h1, w0:w1] = mask
        placed.append(full)
        total += full
    torch.testing.assert_close(sum(p / total for p in placed), torch.ones(h, w))
    ramp_down = blend_mask(6, 6, (True, False, True, True), 3)[:, 0]
    torch.testing.assert_close(ramp_down, torch.tensor([1, 1, 1, 1, 2 / 3, 1 / 3]))


def _encode_two_chunks(vae: WanVAE, video: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    """Stream a 5-frame clip as a first chunk of 1 frame and a later chunk of 4."""
    first = vae.encode_chunk(video[:, :, :1], cache, first_chunk=True)
    return torch.cat([first, vae.encode_chunk(video[:, :, 1:], cache, first_chunk=False)], dim=2)


def test_tiled_streaming_blends_per_tile_streams_and_stays_close_to_untiled() -> None:
    vae = _small_vae()
    video = _smooth_video(5, 128, 64)
    z_plain = _encode_two_chunks(vae, video, StreamCache())
    x_plain = vae.decode_chunk(z_plain, StreamCache())
    vae.tiling = TileConfig(size=12, stride=8, ramp=4, threshold=120)  # 16 latent rows -> tiles 0:12 and 8:16
    enc, dec = StreamCache(), StreamCache()
    z_tiled = _encode_two_chunks(vae, video, enc)
    x_tiled = vae.decode_chunk(z_plain, dec)
    assert z_tiled.shape == z_plain.shape == (1, 16, 2, 16, 8)
    assert x_tiled.shape == x_plain.shape == (1, 3, 5, 128, 64)
    assert sorted(enc.tiles) == sorted(dec.tiles) == [(0, 12, 0, 8), (8, 16, 0, 8)] and not enc.slots
    assert all(s.device.type == "cpu" for c in enc.tiles.values() for s in c.slots if isinstance(s, torch.Tensor))
    # Reference: every tile streamed on its own (crops are below the threshold), blended by mask / sum of masks.
    acc, weight = torch.zeros_like(z_plain), torch.zeros(16, 8)
    for h0, h1, w0, w1 in enc.tiles:
        z = _encode_two_chunks(vae, video[..., h0 * 8:h1 * 8, w0 * 8:w1 * 8], StreamCache())
        mask = blend_mask(h1 - h0, w1 - w0, (h0 == 0, h1 == 16, w0 == 0, w1 == 8), 4)
        acc[..., h0:h1, w0:w1] += z * mask
        weight[h0:h1, w0:w1] += mask
    torch.testing.assert_close(z_tiled, acc / weight, atol=1e-6, rtol=0)
    # Tiles see less context (zero padding, per-tile attention), so only closeness is expected.
    assert (z_tiled - z_plain).abs().mean() < 0.05 * z_plain.std()
    assert (x_tiled - x_plain).abs().mean() < 0.25 * x_plain.std()
    assert torch.corrcoef(torch.stack([x_tiled.flatten(), x_plain.flatten()]))[0, 1] > 0.95


def test_nearest_upsampling_in_run_dtype_equals_upstreams_float32_round_trip() -> None:
    x = torch.randn(2, 6, 5, 7).to(torch.bfloat16)
    upstream = torch.nn.functional.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").type_as(x)
    assert torch.equal(_NearestUp2x()(x), upstream)


def _encode_decode(vae: WanVAE, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = _encode_two_chunks(vae, video, StreamCache())
    return z, vae.decode_chunk(z, StreamCache())


@pytest.mark.parametrize("form", ["conv3d", *CONV_FORMS])
def test_channels_last_weights_and_conv_forms_give_the_same_latents_and_frames(form: str) -> None:
    video = _smooth_video(5, 32, 48)
    z_ref, x_ref = _encode_decode(_small_vae(), video)
    z, x = _encode_decode(_small_vae().to_channels_last().set_conv_form(form), video)
    torch.testing.assert_close(z, z_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(x, x_ref, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_norms_give_the_same_latents_and_frames() -> None:
    video = _smooth_video(5, 32, 48)
    reference = _small_vae()
    for norm in (m for m in reference.modules() if isinstance(m, RMSNorm)):
        torch.nn.init.uniform_(norm.gamma, 0.5, 1.5)  # non-trivial gains: the fused form folds sqrt(C) into them
    compiled = copy.deepcopy(reference).compile_norms()
    z_ref, x_ref = _encode_decode(reference, video)
    z, x = _encode_decode(compiled, video)
    assert all(m.fused is not None for m in compiled.modules() if isinstance(m, RMSNorm))
    torch.testing.assert_close(z, z_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(x, x_ref, atol=1e-5, rtol=0)
