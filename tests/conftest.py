"""Shared fixtures: small real clips written to disk, the InfVSR parity data, the path to ../shared, torch threads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# InfVSR parity evidence (official pipeline's fixture, manifests, weights rule): a copy travels with
# the tests so a fresh clone reproduces the parity claim; test_parity_data checks it against ../shared.
INFVSR_REFERENCE = REPO / "tests" / "data" / "infvsr_reference"


def real_frames(n: int, size: tuple[int, int] = (64, 96), seed: int = 0) -> np.ndarray:
    """``n`` frames panning smoothly over a real photograph (skimage astronaut), uint8 (n,H,W,3)."""
    from skimage import data

    img = data.astronaut()
    h, w = size
    rng = np.random.default_rng(seed)
    y0, x0 = rng.integers(0, 100, size=2)
    return np.stack([img[y0 + t % 200: y0 + t % 200 + h, x0 + (2 * t) % 200: x0 + (2 * t) % 200 + w] for t in range(n)])


def write_clip(path: Path, frames: np.ndarray) -> Path:
    from infvsr_bench.io.writers import open_writer

    w = open_writer(path, fps=25.0)
    w.write(frames)
    w.close()
    return path


def downscale(frames: np.ndarray, scale: int = 4) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def clips_folder(root: Path, lengths: dict[str, int]) -> Path:
    """A user-layout dataset (LR/ + GT/) at ``root``: one real clip per name, of the given length."""
    for i, (name, n) in enumerate(lengths.items()):
        gt = real_frames(n, seed=i)
        write_clip(root / "GT" / f"{name}.mkv", gt)
        write_clip(root / "LR" / f"{name}.mkv", downscale(gt))
    return root


@pytest.fixture(scope="session")
def test_threads() -> int:
    """Torch CPU threads for the tests: CI's two cores, fewer where the machine or OMP_NUM_THREADS gives fewer."""
    import torch

    return min(2, torch.get_num_threads())


@pytest.fixture(autouse=True)
def torch_threads(test_threads: int) -> None:
    """Every test starts on ``test_threads`` torch threads, whatever an earlier test or run's ``threads`` option set."""
    import torch

    torch.set_num_threads(test_threads)


@pytest.fixture
def folder_dataset(tmp_path: Path):
    """A user-layout dataset (LR/ + GT/) with three short real clips; returns a builder."""

    def make(lengths=(24, 30, 20), size=(64, 96)) -> Path:
        root = tmp_path / "data"
        for i, n in enumerate(lengths):
            gt = real_frames(n, size, seed=i)
            write_clip(root / "GT" / f"clip{i}.mkv", gt)
            write_clip(root / "LR" / f"clip{i}.mkv", downscale(gt))
        return root

    return make
