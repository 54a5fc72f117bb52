"""InfVSR visual encoder (Swin-L + image_proj + DAPE merge) against the official-code parity data."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from conftest import INFVSR_REFERENCE

from methods.infvsr.visual_encoder import (
    SwinConfig,
    VisualEncoder,
    load_visual_encoder,
    merge_dape,
    prepare_reference,
    select_ram_keys,
)

REFERENCE = INFVSR_REFERENCE
SMALL = SwinConfig(img_size=64, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(2, 2, 4, 4), window_size=4, proj_dim=32)


@pytest.fixture(scope="module")
def weights_rule() -> ModuleType:
    spec = importlib.util.spec_from_file_location("infvsr_weights_rule", REFERENCE / "weights_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fixture() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(REFERENCE / "fixture_tiny.safetensors")


@pytest.fixture(scope="module")
def full_encoder(weights_rule: ModuleType) -> VisualEncoder:
    """Full-size encoder loaded the official way from rule weights, with RAM extras the loader must drop."""
    ram = weights_rule.make_state_dict(REFERENCE / "manifest_ram_swin_l.txt")
    ram["tagging_head.weight"] = torch.zeros(2, 2)
    ram["visual_encoder.layers.0.blocks.1.attn_mask"] = torch.zeros(64, 144, 144)
    ram["visual_encoder.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(144, 144, dtype=torch.long)
    dape = weights_rule.make_state_dict(REFERENCE / "manifest_dape.txt")
    dape["unrelated.lora_A"] = torch.zeros(1)
    return load_visual_encoder(ram, dape)


def _dape_entries(encoder: VisualEncoder, rank: int = 8) -> list[tuple[str, tuple[int, ...]]]:
    entries = []
    for name, module in encoder.named_modules():
        if name.endswith(".attn.qkv"):
            c = module.in_features
            entries += [(f"{name}.lora_A", (2 * rank, c)), (f"{name}.lora_B", (2 * c, rank))]
    return entries


def test_meta_build_state_dict_and_dape_keys_match_manifests(weights_rule: ModuleType) -> None:
    with torch.device("meta"):
        encoder = VisualEncoder()
    got = [(key, tuple(value.shape)) for key, value in encoder.state_dict().items()]
    assert got == weights_rule.parse_manifest(REFERENCE / "manifest_ram_swin_l.txt")
    buffers = {name.rsplit(".", 1)[-1] for name, _ in encoder.named_buffers()}
    assert buffers == {"relative_position_index", "attn_mask"}
    assert _dape_entries(encoder) == weights_rule.parse_manifest(REFERENCE / "manifest_dape.txt")


def test_meta_build_buffers_match_eager_build() -> None:
    eager = VisualEncoder(SMALL)
    with torch.device("meta"):
        meta = VisualEncoder(SMALL)
    meta.to_empty(device="cpu")
    meta.init_buffers()
    eager_buffers = dict(eager.named_buffers())
    assert eager_buffers.keys() == dict(meta.named_buffers()).keys()
    for name, value in meta.named_buffers():
        assert torch.equal(value, eager_buffers[name]), name


def test_prepare_reference_matches_fixture(fixture: dict[str, torch.Tensor]) -> None:
    prepared = prepare_reference(fixture["input.lr"][:, :, 0])
    assert prepared.shape == (1, 3, 384, 384) and prepared.dtype == torch.float32
    torch.testing.assert_close(prepared, fixture["reference.prepared"], rtol=0, atol=1e-6)
    assert prepare_reference(fixture["input.lr"][:, :, 0], dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.slow
def test_full_encoder_matches_official_context(full_encoder: VisualEncoder, fixture: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        context = full_encoder(fixture["reference.prepared"])
    assert context.shape == (1, 145, 512)
    torch.testing.assert_close(context, fixture["reference.context"], rtol=0, atol=1e-4)


def test_select_ram_keys_keeps_encoder_tensors_only() -> None:
    t = torch.zeros(1)
    state = {
        "visual_encoder.norm.weight": t,
        "image_proj.bias": t,
        "visual_encoder.layers.0.blocks.1.attn_mask": t,
        "visual_encoder.layers.0.blocks.0.attn.relative_position_index": t,
        "label_embed": t,
        "tagging_head.layer.0.weight": t,
    }
    assert list(select_ram_keys(state)) == ["visual_encoder.norm.weight", "image_proj.bias"]


def _small_qkv_example(c: int = 8, rank: int = 2) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    gen = torch.Generator().manual_seed(0)
    name = "visual_encoder.layers.0.blocks.0.attn.qkv"
    swin = {
        f"{name}.weight": torch.randn(3 * c, c, generator=gen),
        f"{name}.bias": torch.randn(3 * c, generator=gen),
        "visual_encoder.norm.weight": torch.randn(c, generator=gen),
    }
    dape = {
        f"{name}.lora_A": torch.randn(2 * rank, c, generator=gen),
        f"{name}.lora_B": torch.randn(2 * c, rank, generator=gen),
        "some.other.key": torch.randn(3, generator=gen),
    }
    return swin, dape, name


def test_merge_dape_equals_explicit_lora_forward() -> None:
    c, rank, scale = 8, 2, 0.25
    swin, dape, name = _small_qkv_example(c, rank)
    original = swin[f"{name}.weight"].clone()
    merged = merge_dape(swin, dape, rank=rank, scale=scale)

    w, b = swin[f"{name}.weight"], swin[f"{name}.bias"]
    lora_a, lora_b = dape[f"{name}.lora_A"], dape[f"{name}.lora_B"]
    x = torch.randn(5, c, generator=torch.Generator().manual_seed(1))
    q_ref = F.linear(x, w[:c], b[:c]) + scale * (x @ lora_a[:rank].T) @ lora_b[:c].T
    k_ref = F.linear(x, w[c : 2 * c], b[c : 2 * c])
    v_ref = F.linear(x, w[2 * c :], b[2 * c :]) + scale * (x @ lora_a[rank:].T) @ lora_b[c:].T
    q, k, v = F.linear(x, merged[f"{name}.weight"], merged[f"{name}.bias"]).split(c, dim=-1)
    torch.testing.assert_close(q, q_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(k, k_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(v, v_ref, rtol=0, atol=1e-5)

    assert torch.equal(merged[f"{name}.weight"][c : 2 * c], original[c : 2 * c])
    assert not torch.equal(merged[f"{name}.weight"][:c], original[:c])
    assert merged[f"{name}.bias"] is b and merged["visual_encoder.norm.weight"] is swin["visual_encoder.norm.weight"]
    assert torch.equal(swin[f"{name}.weight"], original), "input state dict must not be modified"
    assert set(merged) == set(swin)


@pytest.mark.parametrize(
    ("drop", "reshape", "bad_key"),
    [
        ("lora_B", None, "visual_encoder.layers.0.blocks.0.attn.qkv.lora_B"),
        (None, "lora_A", "visual_encoder.layers.0.blocks.0.attn.qkv.lora_A"),
    ],
)
def test_merge_dape_errors_name_the_offending_key(drop: str | None, reshape: str | None, bad_key: str) -> None:
    swin, dape, name = _small_qkv_example()
    if drop:
        del dape[f"{name}.{drop}"]
    if reshape:
        dape[f"{name}.{reshape}"] = torch.zeros(3, 8)
    with pytest.raises(ValueError, match=bad_key.replace(".", r"\.")) as info:
        merge_dape(swin, dape, rank=2)
    assert "\n" not in str(info.value)


def test_small_variant_batches_and_runs_in_bfloat16(weights_rule: ModuleType) -> None:
    with torch.device("meta"):
        template = VisualEncoder(SMALL)
    manifest = [f"{k}\t{list(v.shape)}" for k, v in template.state_dict().items()]
    ram = weights_rule.make_state_dict(manifest)
    dape = weights_rule.make_state_dict([f"{k}\t{list(s)}" for k, s in _dape_entries(template)])
    encoder = load_visual_encoder(ram, dape, config=SMALL)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        both = encoder(images)
        one = encoder(images[1:])
        half = load_visual_encoder(ram, dape, config=SMALL, dtype=torch.bfloat16)(images)
    assert both.shape == (2, 1 + 16 * 16 // 64, 32)
    torch.testing.assert_close(both[1:], one, rtol=0, atol=1e-5)
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    assert (half.float() - both).abs().max() < 0.1 * both.abs().max()
    with pytest.raises(ValueError, match="expected"):
        encoder(images[:, :, :32])
