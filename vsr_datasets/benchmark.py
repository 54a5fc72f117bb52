"""Dataset kinds: each loads to a ``Dataset`` (infvsr_bench.contracts): its clips (LR path, optional GT path).

Kinds are registered: ``generated`` benchmarks build themselves on first use from a recipe held in
the config (data, not code); ``folder`` reads a user tree ``root/LR/<clip>`` + ``root/GT/<clip>``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from infvsr_bench.checksums import content_digest
from infvsr_bench.config import from_options
from infvsr_bench.contracts import ClipEntry, Dataset
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import VIDEO_SUFFIXES, frame_files, is_hidden
from infvsr_bench.registry import Registry


@dataclasses.dataclass
class GeneratedConfig:
    """A benchmark built from shipped media by a recipe; rebuilt identically from the same recipe."""

    name: str
    root: str
    kind: str = "generated"
    version: int = 1
    scale: int = 4
    seed: int = 0
    storage: str = "ffv1"
    degradation: dict = dataclasses.field(default_factory=lambda: {"type": "bicubic"})
    clips: list = dataclasses.field(default_factory=list)
    # Clips from every video in a folder of the user's own HR videos (see vsr_datasets.builder).
    clips_from: dict = dataclasses.field(default_factory=dict)
    # False: GT is built and kept but not handed to metrics (no-reference scoring, like MovieLQ).
    use_gt: bool = True
    convention: dict = dataclasses.field(default_factory=dict)

    def load(self) -> "Dataset":
        return _load_generated(self)


@dataclasses.dataclass
class FolderConfig:
    """A user's tree: ``root/<lr_dir>/<clip>`` and optionally ``root/<gt_dir>/<clip>`` (videos or frame folders)."""

    name: str
    root: str
    kind: str = "folder"
    scale: int = 4
    lr_dir: str = "LR"
    gt_dir: str = "GT"
    convention: dict = dataclasses.field(default_factory=dict)

    def load(self) -> "Dataset":
        return _load_folder(self)


def clip_items(folder: Path, dataset: str) -> dict[str, Path]:
    """Clip name -> path for every video file or frame folder directly inside ``folder``, macOS metadata
    (``._*``, ``.DS_Store``) left out; two of one name (``shot/`` beside ``shot.mkv``) are refused in one line naming both."""
    items: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if is_hidden(p) or not (p.is_dir() and frame_files(p) or p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES):
            continue
        name = p.name if p.is_dir() else p.stem
        if name in items:
            raise ConfigError(f"dataset {dataset!r}: {items[name]} and {p} are both clip {name!r}; keep one of them")
        items[name] = p
    return items


def data_record(clips: list[ClipEntry], root: Path, **about: Any) -> dict[str, Any]:
    """What the run record keeps about a folder-backed dataset: ``about`` plus the content digest of every
    clip's files (relative names, sizes, mtimes; checksums.content_digest), which identifies the data."""
    files = [p for c in clips for p in (c.lr, c.gt) if p is not None]
    return {**about, "root": str(root), "content_digest": content_digest(files, root)}


def _load_folder(cfg: FolderConfig) -> Dataset:
    root = Path(cfg.root).expanduser()
    lr_root, gt_root = root / cfg.lr_dir, root / cfg.gt_dir
    if not lr_root.is_dir():
        raise ConfigError(f"dataset {cfg.name!r}: no LR folder at {lr_root}")
    lr = clip_items(lr_root, cfg.name)
    if not lr:
        raise ConfigError(f"dataset {cfg.name!r}: {lr_root} holds no videos or frame folders")
    # A clip without GT stays in the list: full-reference metrics then fail that clip alone.
    gt = clip_items(gt_root, cfg.name) if gt_root.is_dir() else {}
    clips = [ClipEntry(name, lr[name], gt.get(name)) for name in lr]
    return Dataset(cfg.name, root, cfg.scale, clips,
                   data_record(clips, root, kind="folder", lr_dir=cfg.lr_dir, gt_dir=cfg.gt_dir))


def _known_cuts(source: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The shot starts a generated clip's manifest records (animated photos); None when its source
    cannot know them (a real video)."""
    cuts = source.get("cut_frames")
    return None if cuts is None else tuple(int(c) for c in cuts)


def _load_generated(cfg: GeneratedConfig) -> Dataset:
    from vsr_datasets.builder import build_benchmark, folder_clips, manifest_matches, read_manifest

    root = Path(cfg.root).expanduser()
    recipe = dataclasses.asdict(cfg)
    if cfg.clips_from:
        recipe["clips"] = folder_clips(**cfg.clips_from) + list(cfg.clips)
    if not manifest_matches(root, recipe):
        build_benchmark(recipe, root)
    manifest = read_manifest(root)
    clips = [ClipEntry(c["name"], root / c["lr"]["path"], root / c["gt"]["path"] if cfg.use_gt else None,
                       _known_cuts(c.get("source") or {}))
             for c in manifest["clips"]]
    return Dataset(cfg.name, root, cfg.scale, clips, {"kind": "generated", "root": str(root),
                                                       "recipe_sha256": manifest["recipe_sha256"]})


# Each kind's config dataclass has a ``load() -> Dataset`` method.
DATASET_KINDS: Registry[type] = Registry("dataset kind")
DATASET_KINDS.register("generated", GeneratedConfig)
DATASET_KINDS.register("folder", FolderConfig)
DATASET_KINDS.register("public", "vsr_datasets.public:PublicConfig")


def load_dataset(options: Mapping[str, Any]) -> Dataset:
    """Resolve a dataset config (data) to its clips, building a generated benchmark if needed."""
    schema = DATASET_KINDS.get(str(options.get("kind", "generated")))
    return from_options(schema, options, f"dataset {options.get('name')!r}").load()
