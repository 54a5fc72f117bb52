"""The public VSR test sets as declarative entries: layout, clips, frame counts, scoring convention.

Nothing is downloaded: a missing set gives one line saying where its authors publish it. Where the
literature fixes clip names and lengths they are checked; otherwise the clip count is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from infvsr_bench.contracts import ClipEntry, Dataset
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import open_video
from infvsr_bench.registry import Registry
from vsr_datasets.benchmark import clip_items, data_record


@dataclasses.dataclass(frozen=True)
class PublicSet:
    """One public test set: folder names per degradation, known clips, where to get it.

    Its scoring convention (Y or RGB, crop border) lives in ``conf/dataset/<name>.yaml``."""

    name: str
    lr_dirs: dict[str, str]  # degradation name -> LR folder under the root
    gt_dir: str | None  # None: no ground truth (score with no-reference metrics only)
    clips: dict[str, int] | None  # clip -> frames, when the literature fixes them
    num_clips: int
    source: str


_UDM10 = ("archpeople", "archwall", "auditorium", "band", "caffe", "camera", "clap", "lake", "photography", "polyflow")

PUBLIC_SETS: Registry[PublicSet] = Registry("public dataset")
for _s in (
    PublicSet("udm10", {"BIx4": "BIx4", "BDx4": "BDx4"}, "GT", {c: 32 for c in _UDM10}, 10,
              "the PFNL authors' release (UDM10), mirrored in the BasicVSR++/mmagic data instructions"),
    PublicSet("spmcs", {"BIx4": "BIx4", "BDx4": "BDx4"}, "GT", None, 30,
              "the SPMC (Tao et al. 2017) test set release, SPMCS 30 clips"),
    PublicSet("vid4", {"BIx4": "BIx4", "BDx4": "BDx4"}, "GT",
              {"calendar": 41, "city": 34, "foliage": 49, "walk": 47}, 4,
              "the Vid4 release in the BasicSR / mmagic dataset instructions"),
    PublicSet("reds4", {"BIx4": "sharp_bicubic"}, "GT", {c: 100 for c in ("000", "011", "015", "020")}, 4,
              "the REDS training set (clips 000, 011, 015, 020) from the NTIRE 2019 REDS page"),
    PublicSet("mvsr4x", {"real": "LR"}, "GT", None, 15, "the MVSR4x release of the EAVSR authors"),
    PublicSet("videolq", {"real": "input"}, None, None, 50, "the VideoLQ release of the RealBasicVSR authors"),
    PublicSet("youhq40", {"BIx4": "LR"}, "GT", None, 40, "the YouHQ40 test set of the Upscale-A-Video authors"),
    PublicSet("movielq", {"real": "input"}, None, None, 10, "the MovieLQ release of the InfVSR authors"),
):
    PUBLIC_SETS.register(_s.name, _s)


@dataclasses.dataclass
class PublicConfig:
    """A public set on disk: ``root`` holds the set's standard layout."""

    name: str
    root: str
    set: str = ""
    kind: str = "public"
    degradation: str = "BIx4"
    scale: int = 4
    convention: dict = dataclasses.field(default_factory=dict)

    def load(self) -> Dataset:
        return load_public(self)


def load_public(cfg: PublicConfig) -> Dataset:
    """Check the standard layout of a public set and list its clips; one line per problem found."""
    spec = PUBLIC_SETS.get(cfg.set or cfg.name)
    root = Path(cfg.root).expanduser()
    where = f"get it from {spec.source} and pass dataset.root=<folder>"
    if not root.is_dir():
        raise ConfigError(f"dataset {spec.name}: no folder at {root}; {where}")
    if cfg.degradation not in spec.lr_dirs:
        raise ConfigError(f"dataset {spec.name}: degradation {cfg.degradation!r} not in {sorted(spec.lr_dirs)}")
    sides = {"LR": root / spec.lr_dirs[cfg.degradation]}
    if spec.gt_dir:
        sides["GT"] = root / spec.gt_dir
    found: dict[str, dict[str, Path]] = {}
    for side, folder in sides.items():
        if not folder.is_dir():
            raise ConfigError(f"dataset {spec.name}: {side} folder {folder} is missing; {where}")
        found[side] = clip_items(folder, spec.name)
    expected = set(spec.clips) if spec.clips else set(found["LR"])
    for side, items in found.items():
        missing, extra = sorted(expected - set(items)), sorted(set(items) - expected)
        if missing:
            raise ConfigError(f"dataset {spec.name}: clip(s) {missing} missing from {sides[side]}")
        if extra:
            raise ConfigError(f"dataset {spec.name}: unexpected clip(s) {extra} in {sides[side]}")
    if not spec.clips and len(expected) != spec.num_clips:
        raise ConfigError(f"dataset {spec.name}: {len(expected)} clips in {sides['LR']}, the set has {spec.num_clips}")
    for clip in sorted(expected):
        counts = {side: open_video(items[clip]).num_frames for side, items in found.items()}
        want = spec.clips[clip] if spec.clips else counts["LR"]
        for side, n in counts.items():
            if n != want:
                raise ConfigError(f"dataset {spec.name}: clip {clip} has {n} {side} frames, expected {want}")
    clips = [ClipEntry(c, found["LR"][c], found["GT"][c] if "GT" in found else None) for c in sorted(expected)]
    return Dataset(spec.name, root, cfg.scale, clips,
                   data_record(clips, root, kind="public", set=spec.name, degradation=cfg.degradation,
                               lr_dir=spec.lr_dirs[cfg.degradation], gt_dir=spec.gt_dir or ""))
