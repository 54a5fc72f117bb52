"""docs/extending.md's worked examples run as written: its metric, method and dataset, registered and
configured exactly as the page says, then its commands on a tiny generated benchmark."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from infvsr_bench.app import cli
from infvsr_bench.metrics import METRIC_SETTINGS, METRICS, build_metric, register_metric
from methods import METHOD_CONFIGS, METHODS, register_method

PAGE = REPO / "docs" / "extending.md"


def page_files() -> dict[str, str]:
    """Each code block of the page under the path named just above it (`path`:)."""
    text = PAGE.read_text(encoding="utf-8")
    return {path: code for path, code in re.findall(r"^`([^`]+)`[^\n]*:\n\n```(?:python|yaml)\n(.*?)```", text, re.MULTILINE | re.DOTALL)}


def page_commands() -> list[list[str]]:
    """The page's commands, as argument lists after ``python -m infvsr_bench``."""
    block = re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    return [shlex.split(line, comments=True)[3:] for b in block for line in b.splitlines() if line.strip()]


@pytest.fixture
def examples(tmp_path, monkeypatch):
    """The page's files in place: its Python modules importable, its registration lines run against
    copies of the registries, its yaml added to a copy of conf/ that the CLI then reads."""
    files = page_files()
    src, conf = tmp_path / "src", tmp_path / "conf"
    src.mkdir()
    shutil.copytree(cli.conf_dir(), conf)
    for registry in (METRICS, METRIC_SETTINGS, METHODS, METHOD_CONFIGS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.syspath_prepend(str(src))
    for path, code in files.items():
        if path.startswith("conf/"):
            (conf / path.removeprefix("conf/")).write_text(code, encoding="utf-8")
        elif "/" not in path:
            (src / path).write_text(code, encoding="utf-8")
    for path, code in files.items():
        if path in ("infvsr_bench/metrics/__init__.py", "methods/base.py"):
            exec(code, {"register_metric": register_metric, "register_method": register_method})
    monkeypatch.setattr(cli, "conf_dir", lambda: conf)
    return tmp_path


def test_page_has_the_three_examples():
    files = page_files()
    assert {"my_metrics.py", "my_methods.py", "conf/metrics/mae.yaml", "conf/method/nearest.yaml",
            "conf/dataset/mini_bd.yaml"} <= set(files)
    assert [c[0] for c in page_commands()] == ["build", "run", "run"]


def _frames(path: Path) -> np.ndarray:
    """Every frame of a video file as uint8 RGB, decoded by PyAV directly."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_example_metric_streams_and_crops(examples):
    rng = np.random.default_rng(0)
    sr, gt = (rng.integers(0, 256, (7, 20, 24, 3), dtype=np.uint8) for _ in range(2))
    metric = build_metric("mae", {"crop_border": 3})
    metric.update(sr[:4], gt[:4], 0)
    metric.update(sr[4:], gt[4:], 4)
    result = metric.compute()
    ref = np.abs(sr[:, 3:-3, 3:-3].astype(int) - gt[:, 3:-3, 3:-3]).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(result.frames["mae"], ref, rtol=1e-12)
    assert result.scalars["mae"] == pytest.approx(ref.mean(), rel=1e-12)
    assert metric.info()["settings"] == {"crop_border": 3} and metric.info()["version"] == "1"
    metric.reset()
    metric.update(sr[:1], gt[:1], 0)
    assert metric.compute().scalars["mae"] == pytest.approx(ref[0], rel=1e-12)


def test_example_commands_run(examples):
    data, runs = examples / "data", examples / "runs"
    common = [f"data_root={data}"]
    for args in page_commands():
        extra = [f"output_root={runs}", "progress=false"] if args[0] == "run" else []
        assert cli.main([*args, *common, *extra]) == 0, args
    root = data / "mini_bd"
    assert cli.main(["verify", str(root)]) == 0
    nearest = pd.read_parquet(runs / "mini_bd" / "nearest" / "frames.parquet")
    bicubic = pd.read_parquet(runs / "mini_bd" / "bicubic" / "clips.parquet")
    assert set(nearest["clip"]) == {"coffee_pan", "rocket_cut"} and len(nearest) == 12 + 16
    for entry in json.loads((root / "manifest.json").read_text(encoding="utf-8"))["clips"]:
        clip, gt, lr = entry["name"], _frames(root / entry["gt"]["path"]), _frames(root / entry["lr"]["path"])
        sr = lr.repeat(4, axis=1).repeat(4, axis=2)  # nearest x4, written independently of the example
        ref = np.abs(sr.astype(int) - gt).mean(axis=(1, 2, 3))
        got = nearest[nearest["clip"] == clip].sort_values("frame")["mae"].to_numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    record = json.loads((runs / "mini_bd" / "bicubic" / "run.json").read_text(encoding="utf-8"))
    mae = next(m for m in record["metrics"] if m["column"] == "mae")
    assert mae["settings"] == {"crop_border": 4} and (bicubic["status"] == "ok").all()
    assert (bicubic["mae"] < nearest.groupby("clip")["mae"].mean().reindex(bicubic["clip"]).to_numpy()).all()
