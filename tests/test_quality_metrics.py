"""pyiqa-backed LPIPS / DISTS / MUSIQ / CLIP-IQA / NIQE against direct pyiqa calls, and the DOVER adapter's testable parts.

No pretrained file is reachable here, so every network gets seeded random weights: the references
are unmodified pyiqa calls that find those same random weights where pyiqa itself looks (torch's
hub cache, or an explicit path), while our metrics build them in random mode and, from the same
files placed in the weights folder, in pretrained mode. NIQE uses the parameters basicsr ships.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import real_frames
from metric_tester import Clip, check_streaming

from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics import METRICS, build_metric
from infvsr_bench.weights import WeightsMissingError, sha256_file

pyiqa = pytest.importorskip("pyiqa")

SEED = 7
LEARNED = ["lpips", "dists", "musiq", "clipiqa"]


def degrade(frames: np.ndarray) -> np.ndarray:
    """A realistic SR-like output: x2 bicubic down and up (cv2), so FR metrics see a real difference."""
    import cv2

    out = []
    for f in frames:
        small = cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(small, (f.shape[1], f.shape[0]), interpolation=cv2.INTER_CUBIC))
    return np.stack(out)


def to_batch(frames: np.ndarray) -> torch.Tensor:
    from torchvision.transforms.functional import to_tensor

    return torch.stack([to_tensor(f) for f in frames])


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    """A torch hub folder holding seeded random torchvision trunks, where torchvision looks for them.

    Each trunk is what torchvision builds right after ``torch.manual_seed(SEED)`` before it loads
    IMAGENET1K_V1 weights (VGG then skips its init loop), i.e. exactly the draws pyiqa's LPIPS/DISTS
    make first after the seed; the unused classifier is stored as a zero-stride tensor (small file).
    """
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    for arch, name, kwargs in [("alexnet", "alexnet-owt-7be5be79.pth", {}), ("vgg16", "vgg16-397923af.pth", {"init_weights": False})]:
        torch.manual_seed(SEED)
        sd = getattr(torchvision.models, arch)(**kwargs).state_dict()
        sd = {k: v if k.startswith("features") else torch.zeros(()).expand(v.shape) for k, v in sd.items()}
        torch.save(sd, home / "hub" / "checkpoints" / name)
    return home


@pytest.fixture(scope="module")
def rn50(tmp_path_factory) -> Path:
    """A seeded random CLIP RN50 saved as a TorchScript archive, the format of OpenAI's RN50.pt.

    The architecture comes from open_clip's RN50 config, independent of our constant; pyiqa's loader
    reads a TorchScript file (a plain state-dict file fails in it).
    """
    import json

    import open_clip
    from pyiqa.archs import clip_model

    cfg = json.loads((Path(open_clip.__file__).parent / "model_configs" / "RN50.json").read_text())
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    torch.manual_seed(SEED)
    clip = clip_model.CLIP(
        cfg["embed_dim"], v["image_size"], tuple(v["layers"]), v["width"], v["patch_size"],
        t["context_length"], t["vocab_size"], t["width"], t["heads"], t["layers"],
    ).eval()
    example = (torch.rand(1, 3, 64, 64), torch.zeros(1, t["context_length"], dtype=torch.long))
    path = tmp_path_factory.mktemp("clip") / "RN50.pt"
    torch.jit.save(torch.jit.trace(clip, example, check_trace=False), path)
    return path


def reference(name: str, sr: np.ndarray, gt: np.ndarray | None, **options) -> tuple[np.ndarray, torch.nn.Module]:
    """A direct pyiqa call: the metric built from the seed as pyiqa builds it, on a [0,1] float batch."""
    torch.manual_seed(SEED)
    metric = pyiqa.create_metric(name, device="cpu", **options)
    out = metric(to_batch(sr), to_batch(gt)) if gt is not None else metric(to_batch(sr))
    return out.detach().reshape(-1).double().numpy(), metric


@dataclasses.dataclass
class Reference:
    """Frames, pyiqa's values on them, and a weights folder holding the reference's own weights."""

    sr: np.ndarray
    gt: np.ndarray | None
    values: np.ndarray
    weights_dir: Path
    lower_better: bool


@pytest.fixture(scope="module")
def references(hub, request, tmp_path_factory):
    """Direct pyiqa results per metric, computed once (TORCH_HOME = the random trunks' hub).

    The reference's weights are written where our pretrained mode looks: pyiqa's own file in
    <weights>/pyiqa/ (its trunk stays in torch's hub cache), CLIP's RN50 linked into <weights>/clip/.
    """
    cache: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in cache:
            gt = real_frames(3, (64, 96), seed=1)
            sr, gt = (degrade(gt), gt) if name in ("lpips", "dists") else (gt, None)
            options = {"pretrained": False}
            if name == "clipiqa":
                options = {"backbone": str(request.getfixturevalue("rn50"))}
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("TORCH_HOME", str(hub))
                values, ref = reference(name, sr, gt, **options)
            folder = tmp_path_factory.mktemp("weights")
            spec = METRICS.get(name).spec
            if spec.model is not None:
                (folder / "pyiqa").mkdir()
                torch.save(ref.net.state_dict(), folder / "pyiqa" / spec.model.filename)
            if name == "clipiqa":
                (folder / "clip").mkdir()
                os.symlink(options["backbone"], folder / "clip" / "RN50.pt")
            cache[name] = Reference(sr, gt, values, folder, ref.lower_better)
        return cache[name]

    return get


@pytest.mark.parametrize("name", LEARNED)
def test_random_weights_equal_direct_pyiqa_call(name, references, hub, monkeypatch):
    """Random mode builds exactly the network pyiqa builds from the same seed, and gives its values."""
    ref = references(name)
    monkeypatch.setenv("TORCH_HOME", str(hub / "unused"))  # random mode needs no file at all
    metric = build_metric(name, {"weights": "random", "seed": SEED, "device": "cpu", "batch_size": 8})
    metric.update(ref.sr, ref.gt, 0)
    result = metric.compute()
    np.testing.assert_array_equal(result.frames[name].to_numpy(), ref.values)
    assert result.frames["frame"].tolist() == [0, 1, 2]
    assert result.scalars[name] == pytest.approx(ref.values.mean(), rel=1e-12)
    assert metric.weights == "random" and metric.weights_sha256 == {}
    assert metric.info()["backend"]["options"]["pretrained"] is False or name == "clipiqa"


@pytest.mark.parametrize("name", LEARNED)
def test_pretrained_files_equal_direct_pyiqa_call(name, references, hub, monkeypatch):
    """Files found in the weights folder and in torch's hub cache are loaded as pyiqa loads them."""
    ref = references(name)
    monkeypatch.setenv("TORCH_HOME", str(hub))
    if name == "clipiqa":  # OpenAI's RN50.pt is accepted only with its pinned sha256: pin the stand-in's instead
        cls, (rn50,) = METRICS.get(name), METRICS.get(name).spec.backbones
        stand_in = dataclasses.replace(rn50.file, sha256=sha256_file(ref.weights_dir / "clip" / "RN50.pt"))
        monkeypatch.setattr(cls, "spec", dataclasses.replace(cls.spec, backbones=(dataclasses.replace(rn50, file=stand_in),)))
    metric = build_metric(name, {"weights_dir": str(ref.weights_dir), "device": "cpu", "batch_size": 8})
    metric.update(ref.sr, ref.gt, 0)
    np.testing.assert_array_equal(metric.compute().frames[name].to_numpy(), ref.values)
    spec = type(metric).spec
    assert metric.weights == "pretrained"
    assert set(metric.weights_sha256) == {f.filename for f in spec.files()}
    info = metric.info()
    assert info["weights"] == "pretrained" and info["runtime"]["batch_size"] == 8
    assert info["backend"]["backend"] == "pyiqa" and info["backend"]["metric"] == name
    assert info["backend"]["licence"].startswith("PolyForm-Noncommercial")
    assert info["backend"]["lower_better"] == (not type(metric).higher_is_better) == ref.lower_better
    for f in spec.files():
        where = hub / "hub" / "checkpoints" if f.group == "torchvision" else ref.weights_dir / f.group
        assert info["backend"]["files"][f.filename] == str(where / f.filename)


@pytest.mark.parametrize("name", ["lpips", "niqe"])
def test_streaming_equals_one_call(name, hub, monkeypatch):
    """Chunks of uneven sizes give exactly the values of one call: batches never depend on chunking."""
    monkeypatch.setenv("TORCH_HOME", str(hub))
    if name == "lpips":
        gt = real_frames(5, (48, 64), seed=2)
        sr, options = degrade(gt), {"weights": "random", "seed": SEED}
    else:
        basicsr_npz()
        sr, gt, options = real_frames(5, (192, 192), seed=2), None, {}
    options.update(device="cpu", batch_size=2)
    check_streaming(build_metric(name, options), Clip(sr, gt), [[1, 3, 1]])  # the real network, not memoised


def basicsr_npz() -> Path:
    from infvsr_bench.metrics.no_reference import NIQE_PARAMS

    path = NIQE_PARAMS.shipped_path()
    if path is None:
        pytest.skip("basicsr is not installed: NIQE has no shipped parameters here")
    return path


@pytest.mark.parametrize("crop_border", [0, 4])
def test_niqe_shipped_params_equal_pyiqa(crop_border, tmp_path, monkeypatch):
    """NIQE on basicsr's shipped pristine model equals pyiqa's NIQE given the same numbers as a .mat file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    npz = np.load(basicsr_npz())
    mat = tmp_path / "niqe_modelparameters.mat"
    scipy.io.savemat(mat, {"mu_prisparam": npz["mu_pris_param"], "cov_prisparam": npz["cov_pris_param"]})
    from skimage import data

    frames = np.stack([data.astronaut()[100:292, 150:342], data.chelsea()[50:242, 100:292]])
    expected, _ = reference("niqe", frames, None, pretrained_model_path=str(mat), crop_border=crop_border)

    metric = build_metric("niqe", {"crop_border": crop_border, "device": "cpu", "weights_dir": str(tmp_path / "w")})
    metric.update(frames, None, 10)
    result = metric.compute()
    np.testing.assert_array_equal(result.frames["niqe"].to_numpy(), expected)
    assert result.frames["frame"].tolist() == [10, 11]
    assert metric.weights == "shipped"
    assert metric.weights_sha256 == {"niqe_pris_params.npz": sha256_file(basicsr_npz())}
    assert metric.info()["backend"]["options"]["crop_border"] == crop_border

    # pyiqa's own file in the weights folder wins and is "pretrained"
    (tmp_path / "w" / "pyiqa").mkdir(parents=True)
    os.replace(mat, tmp_path / "w" / "pyiqa" / "niqe_modelparameters.mat")
    metric = build_metric("niqe", {"crop_border": crop_border, "device": "cpu", "weights_dir": str(tmp_path / "w")})
    metric.update(frames, None, 10)
    np.testing.assert_array_equal(metric.compute().frames["niqe"].to_numpy(), expected)
    assert metric.weights == "pretrained"


def test_niqe_has_no_random_mode():
    with pytest.raises(ConfigError, match=r"^metric 'niqe': weights must be one of \['auto'\], got 'random'$"):
        build_metric("niqe", {"weights": "random"})


@pytest.mark.parametrize("name", LEARNED + ["niqe"])
def test_missing_weights_fail_fast_naming_files(name, tmp_path, monkeypatch):
    from infvsr_bench.weights import WeightFile

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(WeightFile, "shipped_path", lambda self: None)  # as without basicsr
    cls = METRICS.get(name)
    start = time.perf_counter()
    with pytest.raises(WeightsMissingError) as err:
        build_metric(name, {"weights_dir": str(tmp_path / "w")})
    assert time.perf_counter() - start < 0.5
    message = str(err.value)
    for f in cls.spec.files():
        assert f.filename in message and str(tmp_path / "w" / f.group) in message
    assert str(tmp_path / "torch" / "hub") in message


def test_file_names_match_the_libraries():
    """The names we look up are the ones pyiqa, torchvision and CLIP would download and cache."""
    import torchvision
    from pyiqa.archs import clip_model, dists_arch, lpips_arch, musiq_arch, niqe_arch

    from infvsr_bench.metrics.no_reference import CLIPIQA_SPEC, MUSIQ_SPEC, NIQE_SPEC
    from infvsr_bench.metrics.perceptual import DISTS_SPEC, LPIPS_SPEC

    def base(url: str) -> str:
        return url.rsplit("/", 1)[-1]

    assert LPIPS_SPEC.model.filename == base(lpips_arch.default_model_urls["0.1_alex"])
    assert DISTS_SPEC.model.filename == base(dists_arch.default_model_urls["url"])
    assert MUSIQ_SPEC.model.filename == base(musiq_arch.default_model_urls["koniq10k"])
    assert NIQE_SPEC.model.filename == base(niqe_arch.default_model_urls["niqe"])
    assert LPIPS_SPEC.backbones[0].file.filename == base(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url)
    assert DISTS_SPEC.backbones[0].file.filename == base(torchvision.models.VGG16_Weights.IMAGENET1K_V1.url)
    rn50 = CLIPIQA_SPEC.backbones[0].file
    assert rn50.url == clip_model._MODELS["RN50"]
    for spec in (LPIPS_SPEC, DISTS_SPEC, MUSIQ_SPEC, NIQE_SPEC):
        assert spec.model.url == niqe_arch.get_url_from_name(spec.model.filename)


# ----------------------------------------------------------------------------------- DOVER


def test_dover_fusion_by_hand():
    from infvsr_bench.metrics.dover import fuse

    # raw scores at the normalisation centres: t = a = 0 -> sigmoid(0)
    assert fuse(0.1107, -0.08285) == pytest.approx(0.5, abs=1e-12)
    # one standard unit up on each branch: x = 0.6104 + 0.3896 = 1
    assert fuse(0.1107 + 0.07355, -0.08285 + 0.03774) == pytest.approx(1 / (1 + math.e**-1), abs=1e-12)
    # technical only, two units: x = 1.2208
    assert fuse(0.1107 + 2 * 0.07355, -0.08285) == pytest.approx(1 / (1 + math.exp(-1.2208)), abs=1e-12)


def test_dover_absent_is_a_clear_config_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dover", None)  # import dover -> ImportError, as when not installed
    with pytest.raises(ConfigError, match="VQAssessment/DOVER") as err:
        build_metric("dover", {})
    assert "pip install" in str(err.value)


def test_dover_unrelated_pypi_package_is_named(monkeypatch, tmp_path):
    """PyPI's 'dover' (a versioning tool) imports as ``dover`` but has no ``dover.models``."""
    import importlib.machinery
    import sys
    import types

    fake = types.ModuleType("dover")
    fake.__spec__ = importlib.machinery.ModuleSpec("dover", None)
    monkeypatch.setitem(sys.modules, "dover", fake)
    monkeypatch.setitem(sys.modules, "dover.models", None)
    (tmp_path / "dover").mkdir()
    (tmp_path / "dover" / "DOVER.pth").touch()
    with pytest.raises(ConfigError, match="not the official DOVER"):
        build_metric("dover", {"weights_dir": str(tmp_path)})
    with pytest.raises(WeightsMissingError, match="DOVER.pth"):
        build_metric("dover", {"weights_dir": str(tmp_path / "empty")})


def test_niqe_refuses_frames_smaller_than_its_block():
    from infvsr_bench.errors import ClipError
    from infvsr_bench.metrics import build_metric

    metric = build_metric("niqe", {})
    with pytest.raises(ClipError, match="niqe needs frames of at least 96x96 pixels after cropping, got 96x64"):
        metric.update(np.zeros((2, 64, 96, 3), np.uint8), None, 0)
