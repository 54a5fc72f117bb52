"""Packaging facts a user's machine depends on."""

from __future__ import annotations

import tomllib

from conftest import REPO


def test_every_package_is_in_the_wheel():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("infvsr_bench", "methods", "vsr_datasets")
             for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert "infvsr_bench.conf" in listed


def test_cv2_is_the_headless_build():
    """The README's set-up leaves OpenCV's headless build active: it imports without libGL or a display."""
    import cv2

    gui = [line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
           if line.strip().startswith("GUI:")]
    assert gui == ["NONE"], f"cv2 GUI backend {gui}: run the README's opencv-python-headless reinstall"
