"""No weights file runs code, and none fails with a traceback (issue #20, points 2 and 13).

For every registered metric that loads a file, and every file it loads, a hostile or broken file is
put where the suite would read it (the weights folder, or a library cache it also looks in): a
pickle whose unpickling creates a marker file, a truncated checkpoint, or garbage. Building the
metric must leave no marker and fail with one InfvsrError line naming that file. The metric's other
files are harmless readable checkpoints. Nothing is downloaded: every file is generated here.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

from infvsr_bench.errors import InfvsrError
from infvsr_bench.metrics import METRICS, build_metric
from infvsr_bench.weights import CACHES, CATALOGUE, WeightFile, files_for

# A stand-in for the official DOVER package (not installable here): its evaluator fetches the ConvNeXt
# initialisation exactly as the official conv_backbone.convnext_3d_tiny does, into a small network.
DOVER_STAND_IN = {
    "__init__.py": "",
    "datasets.py": "",
    "models.py": (
        "import torch\n"
        "from torch import nn\n\n"
        "class DOVER(nn.Module):\n"
        "    def __init__(self, **kwargs):\n"
        "        super().__init__()\n"
        "        self.head = nn.Linear(2, 1)\n"
        "        url = 'https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth'\n"
        "        checkpoint = torch.hub.load_state_dict_from_url(url=url, map_location='cpu', check_hash=True)\n"
        "        self.head.load_state_dict(checkpoint['model'], strict=False)\n"
    ),
}
BACKEND = {"tlp": "lpips", "subject_consistency": "timm", "semantic_drift_dino": "timm", "semantic_offline": "timm",
           "background_consistency": "open_clip", "semantic_drift_clip": "open_clip"}


class Payload:
    """Unpickling this creates ``marker``: what a planted checkpoint does with a shell command instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "a")


def checkpoint_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def hostile(kind: str, marker: Path) -> bytes:
    """The bytes of a file of this kind: a code-running pickle, a truncated checkpoint, or garbage."""
    if kind == "payload":
        return checkpoint_bytes({"model": Payload(marker), "weight": torch.zeros(2)})
    if kind == "truncated":
        whole = checkpoint_bytes({"weight": torch.arange(4096.0)})
        return whole[: len(whole) // 2]
    return b"\x00\x01not a weights file\n" * 64


def cache_paths(f: WeightFile) -> list[str]:
    """Its library-cache entries that are plain paths (Hugging Face's cache is looked up by its own client)."""
    return [c for c in f.caches if not c.startswith("hf:")]


CASES = [(name, f, where) for name in METRICS.names() for f in files_for(name)
         for where in ["weights folder", *cache_paths(f)]]


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """Empty library caches and weights folder under tmp_path; the stand-in DOVER importable."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(CACHES, "hf", lambda where: None)  # no Hugging Face cache either
    package = tmp_path / "site" / "dover"
    package.mkdir(parents=True)
    for name, text in DOVER_STAND_IN.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "dover" or m.startswith("dover.")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path / "weights"
    for name in [m for m in sys.modules if m == "dover" or m.startswith("dover.")]:
        del sys.modules[name]


def place(weights: Path, f: WeightFile, where: str, content: bytes) -> Path:
    """Write ``content`` where the suite finds ``f``: the weights folder, or one of its library caches."""
    if where == "weights folder":
        path = weights / f.group / f.filename
    else:
        cache, _, rest = where.partition(":")
        path = CACHES[cache](rest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def assert_refused_in_one_line(name: str, path: Path, options: dict) -> str:
    with pytest.raises(InfvsrError) as err:
        build_metric(name, options)
    message = str(err.value)
    assert str(path) in message and "\n" not in message, message
    return message


@pytest.mark.parametrize("kind", ["payload", "truncated", "garbage"])
@pytest.mark.parametrize(("name", "file", "where"), CASES,
                         ids=[f"{n}-{f.filename}-{w.split(':')[0].replace(' ', '_')}" for n, f, w in CASES])
def test_hostile_or_broken_file_is_refused_in_one_line(name, file, where, kind, isolated, tmp_path):
    """The file is never unpickled with code allowed; the metric fails in one line naming the file."""
    pytest.importorskip("pyiqa" if hasattr(METRICS.get(name), "spec") else BACKEND.get(name, "torch"))
    marker = tmp_path / "MARKER"
    for other in files_for(name):
        if other is not file:  # harmless, readable, in the weights folder
            place(isolated, other, "weights folder", checkpoint_bytes({"model": {}}))
    path = place(isolated, file, where, hostile(kind, marker))
    message = assert_refused_in_one_line(name, path, {"weights_dir": str(isolated), "device": "cpu"})
    assert not marker.exists(), f"loading {path} ran its code"
    if file.expected_sha256(path):  # a pinned file never reaches a loader
        assert "is not the published" in message
    elif kind == "payload" and path.suffix == ".pth":
        assert "refused: loading it would run code (Unsupported global: GLOBAL io.open" in message


FOREIGN = [("musiq", "pyiqa/musiq_koniq_ckpt-e95806b9.pth", "weights that fit MUSIQ"),
           ("ewarp", "torchvision/raft_large_C_T_V1-22a6c225.pth", "weights that fit RAFT"),
           ("tlp", "torchvision/alexnet-owt-7be5be79.pth", "weights that fit alexnet"),
           ("niqe", "pyiqa/niqe_modelparameters.mat", "NIQE parameters"),
           ("dover", "dover/convnext_tiny_1k_224_ema.pth", "the ImageNet initialisation DOVER expects")]


@pytest.mark.parametrize(("name", "key", "expected"), FOREIGN, ids=[n for n, _, _ in FOREIGN])
def test_a_readable_file_that_does_not_fit_is_refused_in_one_line(name, key, expected, isolated):
    """Plain tensors under the wrong names (another model's file): one line naming the file, not a load_state_dict dump."""
    import scipy.io

    pytest.importorskip("pyiqa" if hasattr(METRICS.get(name), "spec") else BACKEND.get(name, "torch"))
    file = CATALOGUE[key]
    for other in files_for(name):
        if other is not file:
            place(isolated, other, "weights folder", checkpoint_bytes({"model": {}}))
    if key.endswith(".mat"):
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {"mu": torch.zeros(3).numpy()})
        content = buffer.getvalue()
    else:
        content = checkpoint_bytes({"conv.weight": torch.zeros(2, 2)})
    path = place(isolated, file, "weights folder", content)
    message = assert_refused_in_one_line(name, path, {"weights_dir": str(isolated), "device": "cpu"})
    assert f"{path}: not {expected}" in message, message


def test_a_forged_checksum_cache_does_not_vouch_for_a_pinned_file(isolated):
    """checksums.json beside a planted file may claim the published sha256: a pinned file is hashed afresh."""
    import json
    import os

    from infvsr_bench.checksums import CHECKSUMS
    from infvsr_bench.weights import WeightsChecksumError, resolve

    lite0 = CATALOGUE["efficientnet_lite0/efficientnet-lite0-57934424.pth"]
    path = place(isolated, lite0, "weights folder", hostile("payload", isolated / "MARKER"))
    stat = os.stat(path)
    forged = {f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}": lite0.sha256}
    (path.parent / CHECKSUMS).write_text(json.dumps(forged))
    with pytest.raises(WeightsChecksumError, match=f"{path}: sha256 [0-9a-f]{{64}} is not the published {lite0.sha256}"):
        resolve([lite0], isolated)


def test_openai_torchscript_copies_are_pinned():
    """Copies that torch.jit.load reads (OpenAI's TorchScript releases) carry the sha256 in OpenAI's own URLs."""
    clip = pytest.importorskip("clip")

    rn50 = CATALOGUE["clip/RN50.pt"]
    assert rn50.sha256 == clip.clip._MODELS["RN50"].split("/")[-2]
    vitb32 = CATALOGUE["clip_vitb32_openai/open_clip_model.safetensors"]
    assert vitb32.expected_sha256(Path("ViT-B-32.pt")) == clip.clip._MODELS["ViT-B/32"].split("/")[-2]
    assert vitb32.expected_sha256(Path("open_clip_model.safetensors")) is None  # read by us as tensors


@pytest.mark.parametrize("kind", ["payload", "garbage"])
def test_infvsr_files_are_refused_in_one_line(kind, isolated, tmp_path):
    """InfVSR's official checkpoint (read first) and the infvsr-tiny safetensors file."""
    from infvsr_bench.weights import CATALOGUE as files
    from methods.base import build_method

    marker = tmp_path / "MARKER"
    for name in ("Wan2.1_VAE.pth", "ram_swin_large_14m.pth", "DAPE.pth"):
        place(isolated, files[f"infvsr/{name}"], "weights folder", checkpoint_bytes({"model": {}}))
    path = place(isolated, files["infvsr/InfVSR.ckpt"], "weights folder", hostile(kind, marker))
    for weights, planted in (("pretrained", path),
                             ("tiny", place(isolated, files["infvsr/infvsr_tiny.safetensors"], "weights folder",
                                            hostile(kind, marker)))):
        with pytest.raises(InfvsrError) as err:
            build_method({"name": "infvsr", "weights_dir": str(isolated), "weights": weights, "device": "cpu"})
        assert str(planted) in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert not marker.exists()


def test_a_partial_load_still_needs_some_of_the_file(tmp_path):
    """LPIPS and DISTS files hold only some layers (non-strict, as pyiqa loads them); a file with none of them is
    refused (pyiqa loaded such a file silently and scored with the layers' random initialisation)."""
    from infvsr_bench.weights import WeightsFileError, load_into

    net, path = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)), tmp_path / "part.pth"
    load_into(net, {"1.weight": torch.ones(1, 2)}, path, strict=False)
    assert torch.equal(net[1].weight, torch.ones(1, 2))
    for foreign in ({"conv.weight": torch.ones(1, 2)}, {}):
        with pytest.raises(WeightsFileError, match=rf"^{path}: not weights that fit Sequential \(none of its "):
            load_into(net, foreign, path, strict=False)
