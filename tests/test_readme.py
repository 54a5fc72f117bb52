"""The README's example commands are what users paste: each `run` line must parse and compose."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO
from hydra.core.override_parser.overrides_parser import OverridesParser

from infvsr_bench.cli import compose


def readme_run_lines() -> list[str]:
    """Every `python -m infvsr_bench run ...` line inside the README's bash blocks."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    return [line.split("&& ")[-1] for block in blocks for line in block.splitlines()
            if re.search(r"(python -m infvsr_bench|infvsr-bench) run\b", line)]


def test_readme_has_run_examples():
    assert len(readme_run_lines()) >= 10


@pytest.mark.parametrize("line", readme_run_lines())
def test_readme_run_example_parses_and_composes(line):
    words = shlex.split(line, comments=True)
    args = words[words.index("run") + 1:]
    if "--cfg" in args:
        args = args[:args.index("--cfg")]
    overrides = [a for a in args if a != "-m"]
    parsed = OverridesParser.create().parse_overrides(overrides)  # the reported failure: '{python}' as a dict
    if any(o.is_sweep_override() for o in parsed):
        pytest.skip("a multirun sweep composes once per value")
    cfg = compose(overrides)
    for item in overrides:
        if item.startswith("method.command="):  # the tool's command line arrives unquoted, placeholders intact
            assert cfg.method.command == shlex.split(item.split("=", 1)[1])[0]
            assert cfg.method.command.startswith("{python} ")
