"""Build a benchmark folder from a recipe: stream source frames -> GT writer + degradation -> LR writer.

Everything is written into a temporary sibling folder and renamed when complete, so an interrupted
build never leaves a folder that looks finished. ``manifest.json`` records every clip's source,
degradation parameters, seeds, sizes and the sha256 of every stored file; ``verify`` re-checks it.
The builder only ever replaces an empty folder or an earlier build of the same dataset (known by
its manifest), and refuses a root that overlaps the recipe's own source videos.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from infvsr_bench.checksums import json_digest, sha256_file
from infvsr_bench.errors import ConfigError, InfvsrError
from infvsr_bench.io.atomic import remove_dead_temps, temp_path
from infvsr_bench.io.writers import open_writer
from infvsr_bench.progress import progress_bar

MANIFEST_VERSION = 1
STORAGE_SUFFIX = {"ffv1": ".mkv", "x264rgb": ".mkv", "png": ""}


CONTENT_KEYS = ("name", "version", "scale", "seed", "storage", "degradation", "clips")


def recipe_sha256(recipe: dict[str, Any]) -> str:
    """Hash of exactly what determines the stored content (not the folder, scoring options, ...)."""
    content = {k: recipe.get(k) for k in CONTENT_KEYS}
    return json_digest(content)


def manifest_matches(root: Path, recipe: dict[str, Any]) -> bool:
    """True when ``root`` holds a finished build of exactly this recipe."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("recipe_sha256") == recipe_sha256(recipe)


def _is_clip_entry(clip: Any) -> bool:
    return isinstance(clip, dict) and isinstance(clip.get("name"), str) and all(
        isinstance(clip.get(side), dict) and isinstance(clip[side].get("path"), str)
        and isinstance(clip[side].get("sha256"), dict) for side in ("gt", "lr"))


def read_manifest(root: Path) -> dict[str, Any]:
    """``root/manifest.json``, checked to list clips with their GT/LR paths and checksums; ConfigError naming it otherwise."""
    path = root / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    clips = manifest.get("clips") if isinstance(manifest, dict) else None
    if not isinstance(clips, list) or not all(_is_clip_entry(c) for c in clips):
        raise ConfigError(f"{path}: not a benchmark manifest (needs a 'clips' list, each clip with a name and "
                          "'gt'/'lr' entries holding 'path' and 'sha256')")
    return manifest


def clip_seed(seed: int, clip: str) -> int:
    """A per-clip seed that does not depend on clip order."""
    return (seed * 1_000_003 + zlib.crc32(clip.encode())) % (2**31)


def tree_sha256(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file of a frame folder, keyed by path relative to ``path``."""
    if path.is_file():
        return {".": sha256_file(path)}
    return {p.name: sha256_file(p) for p in sorted(path.iterdir()) if p.is_file()}


def _chunks(frames: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    buf: list[np.ndarray] = []
    for f in frames:
        buf.append(f)
        if len(buf) == size:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def folder_clips(folder: str = "", frames: int = 3000, size: list | None = None, start: int = 0,
                 min_clips: int = 1) -> list[dict[str, Any]]:
    """One clip spec per video in ``folder`` (sorted by name): ``frames`` frames from ``start``,
    centre-cropped to ``size`` (never upscaled). Each file's size and mtime enter the recipe, so a
    changed source triggers a rebuild; its sha256 goes into the manifest."""
    from infvsr_bench.io.readers import VIDEO_SUFFIXES

    if not folder:
        raise ConfigError("this dataset is built from your own HR videos: set dataset.clips_from.folder=<folder> "
                          "(or $INFVSR_LONGFORM_SOURCES)")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"source folder {root} does not exist")
    videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if len(videos) < min_clips:
        raise ConfigError(f"source folder {root} holds {len(videos)} videos; this benchmark needs at least {min_clips}")
    clips = []
    for video in videos:
        stat = video.stat()
        source = {"type": "video_file", "path": str(video), "start": start, "frames": frames}
        if size:
            source["size"] = list(size)
        clips.append({"name": video.stem, "source": source, "source_file": {"bytes": stat.st_size,
                                                                             "mtime": int(stat.st_mtime)}})
    return clips


def build_clip(clip: dict[str, Any], recipe: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write one clip's GT and LR under ``out/<name>/`` and return its manifest entry."""
    from infvsr_bench.media.degradations import build_degradation
    from infvsr_bench.media.sources import build_source

    name = clip["name"]
    seed = clip_seed(int(recipe["seed"]), name)
    source = build_source(clip["source"], seed=seed)
    degradation = build_degradation(clip.get("degradation", recipe["degradation"]), int(recipe["scale"]))
    degradation.reset(seed)
    suffix = STORAGE_SUFFIX.get(recipe["storage"])
    if suffix is None:
        raise ConfigError(f"unknown storage {recipe['storage']!r}; available: {sorted(STORAGE_SUFFIX)}")
    codec = recipe["storage"] if suffix else "ffv1"
    gt_rel, lr_rel = f"{name}/GT{suffix}", f"{name}/LR{suffix}"
    (out / name).mkdir(parents=True, exist_ok=True)
    gt_w = open_writer(out / gt_rel, fps=source.fps, codec=codec)
    lr_w = open_writer(out / lr_rel, fps=source.fps, codec=codec)
    n_lr = 0
    with gt_w, lr_w, progress_bar(total=source.num_frames, desc=f"build {name}", unit="frame", leave=False) as bar:
        for chunk in _chunks(source.frames(), 16):
            gt_w.write(chunk)
            lr = degradation.apply(chunk)
            lr_w.write(lr)
            n_lr += len(lr)
            bar.update(len(chunk))
        rest = degradation.flush()
        if len(rest):
            lr_w.write(rest)
            n_lr += len(rest)
    if gt_w.frames_written != n_lr:
        raise InfvsrError(f"clip {name}: degradation returned {n_lr} LR frames for {gt_w.frames_written} GT frames")
    h, w = source.size
    scale = int(recipe["scale"])
    return {
        "name": name,
        "frames": gt_w.frames_written,
        "fps": source.fps,
        "hr_size": [h, w],
        "lr_size": [h // scale, w // scale],
        "scale": scale,
        "seed": seed,
        "source": source.spec(),
        **({"source_sha256": sha256_file(Path(clip["source"]["path"]))} if "source_file" in clip else {}),
        "degradation": degradation.spec(),
        "gt": {"path": gt_rel, **gt_w.record(), "sha256": tree_sha256(out / gt_rel)},
        "lr": {"path": lr_rel, **lr_w.record(), "sha256": tree_sha256(out / lr_rel)},
    }


def is_our_build(root: Path, name: str) -> bool:
    """True when ``root`` holds a manifest our builder wrote for the dataset ``name`` (any recipe)."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and "manifest_version" in manifest and "recipe_sha256" in manifest
            and manifest.get("name") == name)


def source_paths(recipe: dict[str, Any]) -> list[Path]:
    """The user's files and folders a recipe reads: ``clips_from.folder`` and every clip source's ``path``."""
    paths = [(recipe.get("clips_from") or {}).get("folder")]
    paths += [dict(c.get("source") or {}).get("path") for c in recipe.get("clips") or []]
    return [Path(p).expanduser().resolve() for p in paths if p]


def check_root(root: Path, recipe: dict[str, Any]) -> None:
    """Refuse a root that overlaps a source, or that holds anything but an empty folder or our own build."""
    name = recipe.get("name")
    for source in source_paths(recipe):
        if root == source or source in root.parents or root in source.parents:
            raise ConfigError(f"dataset root {root} overlaps the source {source} (is, contains or is inside it); "
                              "set dataset.root to a folder outside your source videos")
    if root.exists() and not root.is_dir():
        raise ConfigError(f"dataset root {root} exists and is not a folder; choose another dataset.root")
    if root.is_dir() and any(root.iterdir()) and not is_our_build(root, str(name)):
        raise ConfigError(f"dataset root {root} is not empty and holds no {name!r} benchmark built by infvsr-bench; "
                          "choose another dataset.root, or remove that folder yourself")


def build_benchmark(recipe: dict[str, Any], root: Path) -> Path:
    """Build the whole benchmark into a temp folder next to ``root``, then swap it into place.

    A symlinked root is followed: the folder it points to is the one replaced, the link stays.
    """
    given = Path(root).expanduser()
    root = given.resolve()
    if not recipe.get("clips"):
        raise ConfigError(f"dataset {recipe.get('name')!r} has no clips to build")
    check_root(root, recipe)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(root, "building")  # what builds killed on this host left
        tmp = _fresh_sibling(root, "building")
    except OSError as exc:
        raise ConfigError(f"cannot create dataset folder {root.parent}: {exc.strerror}") from None
    try:
        entries = [build_clip(dict(c), recipe, tmp) for c in progress_bar(recipe["clips"], desc=f"build {recipe['name']}",
                                                                           unit="clip")]
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "name": recipe["name"],
            "recipe": {k: v for k, v in recipe.items() if k != "root"},
            "recipe_sha256": recipe_sha256(recipe),
            "clips": entries,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        _swap_in(tmp, root, recipe)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return given


def _fresh_sibling(root: Path, tag: str) -> Path:
    """A new empty folder next to ``root`` made by this process (never an existing one), default
    permissions, named ``.<root>.<tag>-<host>-<pid>-<random>`` so a leftover can be told ours and dead."""
    path = temp_path(root, tag)
    path.mkdir()
    return path


def _swap_in(new: Path, root: Path, recipe: dict[str, Any]) -> None:
    """Rename ``new`` to ``root``; an existing root (re-checked: empty or ours) is moved aside first, then removed."""
    if not root.exists():
        os.replace(new, root)
        return
    check_root(root, recipe)
    aside = _fresh_sibling(root, "replaced")
    try:
        os.rename(root, aside / root.name)
        os.replace(new, root)
    finally:
        if not root.exists():  # the swap failed half-way: put the old build back
            os.rename(aside / root.name, root)
        shutil.rmtree(aside, ignore_errors=True)


def verify_benchmark(root: Path) -> list[str]:
    """Re-hash every stored file against the manifest; returns the problems (empty when all match)."""
    root = Path(root)
    try:
        manifest = read_manifest(root)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    for clip in manifest["clips"]:
        for side in ("gt", "lr"):
            entry = clip[side]
            path = root / entry["path"]
            if not path.exists():
                problems.append(f"clip {clip['name']}: {side.upper()} missing at {path}")
                continue
            actual = tree_sha256(path)
            bad = sorted(k for k in set(entry["sha256"]) | set(actual) if entry["sha256"].get(k) != actual.get(k))
            if bad:
                problems.append(f"clip {clip['name']}: {side.upper()} checksum mismatch in {path} ({bad[:3]})")
    return problems
