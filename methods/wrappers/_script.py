"""Run a tool's script in this process as ``python script.py ARGS`` would, after a wrapper has patched it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def run_script(script: str | Path, argv: list[str]) -> None:
    """Execute ``script`` as ``__main__`` with ``argv``; its folder comes first on sys.path, as with python."""
    path = Path(script).resolve()
    if not path.is_file():
        sys.exit(f"{Path(sys.argv[0]).name}: no script {script} (cwd {Path.cwd()})")
    sys.argv = [str(path), *argv]
    sys.path[0] = str(path.parent)
    runpy.run_path(str(path), run_name="__main__")
