"""The import layers hold: core (``infvsr_bench``) at the bottom, ``methods`` and ``vsr_datasets`` on it
and blind to each other, the application (``infvsr_bench.app``, ``__main__``) alone on top. Above the
core, metrics are reached through their public modules only, never one metric's own module.

Every import of every module counts, function-local ones too, and so does a registry's lazy
``"package.module:attr"`` target (it is an import that runs later).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from conftest import REPO

PACKAGES = ("infvsr_bench", "methods", "vsr_datasets")
LAZY_TARGET = re.compile(r"((?:infvsr_bench|methods|vsr_datasets)(?:\.\w+)*):\w+")
# What each layer may import besides itself (the two middle packages are separate rooms).
ALLOWED = {"core": {"core"}, "methods": {"core", "methods"}, "vsr_datasets": {"core", "vsr_datasets"},
           "app": {"core", "methods", "vsr_datasets", "app"}}
# What of infvsr_bench.metrics the layers above the core may import: the catalogue, the contract and the
# networks metrics are built on.
PUBLIC_METRICS = {"infvsr_bench.metrics", "infvsr_bench.metrics.base", "infvsr_bench.metrics.networks"}


def layer(module: str) -> str:
    """core, methods, vsr_datasets or app, for a dotted module name inside the three packages."""
    if module == "infvsr_bench.__main__" or module == "infvsr_bench.app" or module.startswith("infvsr_bench.app."):
        return "app"
    return module.split(".")[0] if module.split(".")[0] in ("methods", "vsr_datasets") else "core"


def tree_sources(root: Path = REPO) -> dict[str, tuple[str, str]]:
    """Module name -> (path relative to ``root``, source) for every .py file of the three packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[module] = (str(path.relative_to(root)), path.read_text(encoding="utf-8"))
    return found


def imported(module: str, is_package: bool, source: str, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``source``: absolute and relative, at any depth,
    ``from pkg import sub`` as ``pkg.sub`` when that is a module, and lazy registry targets."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = LAZY_TARGET.fullmatch(node.value)
            if m:
                yield node.lineno, m.group(1)


def violations(sources: Mapping[str, tuple[str, str]]) -> list[str]:
    """'path:line: module (layer) imports target (layer)' for each import against the layers."""
    known = set(sources)
    found = []
    for module, (path, source) in sorted(sources.items()):
        is_package = path.endswith("__init__.py")
        for line, target in dict.fromkeys(imported(module, is_package, source, known)):
            if target.split(".")[0] not in PACKAGES:
                continue
            if layer(target) not in ALLOWED[layer(module)]:
                found.append(f"{path}:{line}: {module} ({layer(module)}) imports {target} ({layer(target)})")
            elif layer(module) != "core" and target.startswith("infvsr_bench.metrics.") and target not in PUBLIC_METRICS:
                found.append(f"{path}:{line}: {module} ({layer(module)}) imports {target} (a metric's own module)")
    return found


def test_no_import_against_the_layers():
    found = violations(tree_sources())
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_every_kind_of_bad_import_is_named():
    """The checker fails on each forbidden direction, however the import is written, and passes the allowed ones."""
    sources = {
        "infvsr_bench.run.runner": ("infvsr_bench/run/runner.py",
                                    "import os\n\ndef f():\n    from methods.base import Method\n"),
        "infvsr_bench.report": ("infvsr_bench/report/__init__.py", "from ..app import cli\n"),
        "infvsr_bench.report.page": ("infvsr_bench/report/page.py", "from ..results import merge\nimport vsr_datasets\n"),
        "infvsr_bench.results.merge": ("infvsr_bench/results/merge.py", "X = 'methods.classical:Bicubic'\n"),
        "infvsr_bench.app": ("infvsr_bench/app/__init__.py", ""),
        "infvsr_bench.app.cli": ("infvsr_bench/app/cli.py", "import methods\nfrom vsr_datasets import sources\n"),
        "infvsr_bench.__main__": ("infvsr_bench/__main__.py", "from infvsr_bench.app.cli import main\n"),
        "methods": ("methods/__init__.py", "from infvsr_bench import app\n"),
        "methods.base": ("methods/base.py", "from infvsr_bench.contracts import Method\nfrom . import classical\n"),
        "methods.classical": ("methods/classical.py", "from vsr_datasets.sources import build_source\n"
                              "from infvsr_bench.metrics.networks import build_lpips\n"
                              "from infvsr_bench.metrics.teco import build_lpips\n"),
        "vsr_datasets": ("vsr_datasets/__init__.py", ""),
        "vsr_datasets.sources": ("vsr_datasets/sources.py", "if True:\n    import methods.base as b\n"),
    }
    assert violations(sources) == [
        "infvsr_bench/report/__init__.py:1: infvsr_bench.report (core) imports infvsr_bench.app.cli (app)",
        "infvsr_bench/report/page.py:2: infvsr_bench.report.page (core) imports vsr_datasets (vsr_datasets)",
        "infvsr_bench/results/merge.py:1: infvsr_bench.results.merge (core) imports methods.classical (methods)",
        "infvsr_bench/run/runner.py:4: infvsr_bench.run.runner (core) imports methods.base (methods)",
        "methods/__init__.py:1: methods (methods) imports infvsr_bench.app (app)",
        "methods/classical.py:1: methods.classical (methods) imports vsr_datasets.sources (vsr_datasets)",
        "methods/classical.py:3: methods.classical (methods) imports infvsr_bench.metrics.teco (a metric's own module)",
        "vsr_datasets/sources.py:2: vsr_datasets.sources (vsr_datasets) imports methods.base (methods)",
    ]
