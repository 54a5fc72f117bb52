"""Resolve, verify and (only when asked) download pretrained files.

Lookup order: the weights folder (``weights_dir`` option, else ``$INFVSR_WEIGHTS``, else
``~/.cache/infvsr_bench/weights``), then the file's own sub-folder there. Nothing is fetched
implicitly: a missing file raises at once with one line per file saying where it is published;
``python -m infvsr_bench download <group>`` fetches them explicitly and records sha256 sums.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable

from infvsr_bench.checksums import sha256_file
from infvsr_bench.errors import InfvsrError

CHECKSUMS = "checksums.json"


class WeightsMissingError(InfvsrError):
    """Pretrained files are not in the weights folder."""


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One pretrained file: its name on disk and where its authors publish it."""

    filename: str
    repo_id: str  # Hugging Face repo (or "" when published elsewhere)
    source: str  # human-readable origin, shown in errors
    subfolder: str = ""  # inside the repo
    sha256: str | None = None  # pinned checksum, when known


def weights_dir(option: str | None = None) -> Path:
    """The weights folder: explicit option, then $INFVSR_WEIGHTS, then the user cache."""
    if option:
        return Path(option).expanduser()
    env = os.environ.get("INFVSR_WEIGHTS")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(cache).expanduser() / "infvsr_bench" / "weights"


def locate(files: Iterable[WeightFile], folder: Path) -> dict[str, Path]:
    """Paths of all ``files`` in ``folder``; one error listing every missing file and its source."""
    found, missing = {}, []
    for f in files:
        path = folder / f.filename
        if path.is_file():
            found[f.filename] = path
        else:
            where = f"; huggingface.co/{f.repo_id}" if f.repo_id else ""
            missing.append(f"{f.filename} ({f.source}{where})")
    if missing:
        raise WeightsMissingError(
            f"missing pretrained file(s) in {folder}: " + "; ".join(missing)
            + ". Put them there, set INFVSR_WEIGHTS, or run `python -m infvsr_bench download <group>` online"
        )
    return found


SEESR = "the SeeSR release (cswry/SeeSR, preset/models)"
# The catalogue of pretrained files, by group; each group lives in <weights folder>/<group>/.
GROUPS: dict[str, tuple[WeightFile, ...]] = {
    "infvsr": (
        WeightFile("InfVSR.ckpt", "zzqingz/InfVSR", "InfVSR DiT, the authors' release"),
        WeightFile("Wan2.1_VAE.pth", "Wan-AI/Wan2.1-T2V-1.3B", "Wan2.1 VAE"),
        WeightFile("ram_swin_large_14m.pth", "", f"RAM Swin-L from {SEESR}"),
        WeightFile("DAPE.pth", "", f"DAPE LoRA from {SEESR}"),
    ),
}


def group_dir(group: str, option: str | None = None) -> Path:
    """Folder of a group's files: an explicit folder option wins, else <weights folder>/<group>."""
    return Path(option).expanduser() if option else weights_dir() / group


def preflight(group: str, option: str | None = None) -> dict[str, Path]:
    """Cheap check (no torch import) that a group's files are present: the CLI runs it first."""
    return locate(GROUPS[group], group_dir(group, option))


def recorded_checksums(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return {}


def checksum(path: Path) -> str:
    """sha256 of a weights file, cached in the folder's checksums.json by (name, size, mtime)."""
    record = recorded_checksums(path.parent)
    stat = path.stat()
    key = f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"
    if key not in record:
        record[key] = sha256_file(path)
        try:
            (path.parent / CHECKSUMS).write_text(json.dumps(record, indent=1, sort_keys=True))
        except OSError:
            pass  # a read-only weights folder still works; the sum is just recomputed next time
    return record[key]


def verify(files: Iterable[WeightFile], paths: dict[str, Path]) -> None:
    """Raise when a file with a pinned checksum does not match it."""
    for f in files:
        if f.sha256 and checksum(paths[f.filename]) != f.sha256:
            raise InfvsrError(f"{paths[f.filename]}: sha256 does not match the published file; re-download it")


def _check_online(host: str = "huggingface.co", timeout: float = 3.0) -> None:
    """Fail in seconds, not after the hub client's retries, when the hub cannot be reached."""
    import socket

    endpoint = os.environ.get("HF_ENDPOINT", f"https://{host}").split("//")[-1].split("/")[0]
    try:
        socket.create_connection((endpoint, 443), timeout=timeout).close()
    except OSError as exc:
        raise InfvsrError(f"offline: cannot reach {endpoint} ({exc.strerror or exc}); copy the files by hand") from None


def download(files: Iterable[WeightFile], folder: Path) -> dict[str, Path]:
    """Fetch missing files from their Hugging Face repos into ``folder`` (explicit, never implicit)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise InfvsrError("HF_HUB_OFFLINE=1: downloads are disabled; unset it or copy the files by hand")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    _check_online()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for f in files:
        target = folder / f.filename
        if not target.is_file():
            if not f.repo_id:
                raise InfvsrError(f"{f.filename} cannot be downloaded automatically; get it from {f.source}")
            try:
                fetched = hf_hub_download(f.repo_id, f.filename, subfolder=f.subfolder or None, local_dir=folder)
            except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
                raise InfvsrError(f"download of {f.filename} from {f.repo_id} failed: {exc}".splitlines()[0]) from None
            if Path(fetched) != target:  # files from a repo sub-folder land below it
                Path(fetched).replace(target)
        paths[f.filename] = target
        checksum(target)
    return paths
