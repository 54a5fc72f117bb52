"""Every command in README.md and docs/ is what users paste: each is checked against what it names.

`run` lines parse and compose; `build`/`train` compose their configs; `report`, `download`, `merge`
and `verify` lines name options, names and folders the program accepts or writes; install lines are
the ones `.ci/run` runs; scripts exist and parse. A command no checker knows fails the test, so a new
kind of command gets its check. docs/extending.md's commands run in tests/test_docs_examples.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from conftest import REPO
from hydra.core.override_parser.overrides_parser import OverridesParser

from infvsr_bench.app.cli import compose, group_options

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_ELSEWHERE = {REPO / "docs" / "extending.md"}  # tests/test_docs_examples.py runs its commands
CI = (REPO / ".ci" / "run").read_text(encoding="utf-8")
PROGRAM = ("python -m infvsr_bench ", "infvsr-bench ")


def commands(page: Path) -> list[str]:
    """A page's commands: each `&&` part of every line of its bash blocks, and every inline code span
    that is a complete command (no `<placeholder>`)."""
    text = page.read_text(encoding="utf-8")
    found = [part.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
             for line in block.splitlines() for part in line.split("&&") if part.strip()]
    for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", text):
        span = " ".join(span.split())
        if span.startswith((*PROGRAM, "bash ", "pip install ")) and "<" not in span and span.strip() not in PROGRAM:
            found.append(span)
    return found


def all_commands() -> list[tuple[str, str]]:
    return [(str(p.relative_to(REPO)), c) for p in PAGES if p not in RUN_ELSEWHERE for c in commands(p)]


def _words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def _subcommand(words: list[str]) -> tuple[str, list[str]]:
    start = 3 if words[:3] == ["python", "-m", "infvsr_bench"] else 1
    return words[start], words[start + 1:]


def _default_runs() -> Path:
    """Where a run of the default settings writes: output_root / dataset (the run folder's parent)."""
    cfg = compose([])
    return Path(cfg.output_root) / cfg.dataset.name


def check_run(args: list[str]) -> None:
    if "--cfg" in args:
        args = args[:args.index("--cfg")]
    overrides = [a for a in args if a != "-m"]
    parsed = OverridesParser.create().parse_overrides(overrides)  # the reported failure: '{python}' as a dict
    sweeps = [o for o in parsed if o.is_sweep_override()]
    if sweeps:
        assert "-m" in args, "a sweep needs -m"
        first = [o.input_line if not o.is_sweep_override() else
                 f"{o.key_or_group}={list(o.sweep_iterator())[0]}" for o in parsed]
        overrides = first  # a multirun sweep composes once per value: the first one here
    cfg = compose(overrides)
    for item in overrides:
        if item.startswith("method.command="):  # the tool's command line arrives unquoted, placeholders intact
            assert cfg.method.command == shlex.split(item.split("=", 1)[1])[0]
            assert cfg.method.command.startswith("{python} ")


def check_build(args: list[str]) -> None:
    cfg = compose(args)
    assert cfg.dataset.kind == "generated", "build makes generated benchmarks"


def check_train(args: list[str]) -> None:
    from infvsr_bench.app.cli import conf_dir
    from methods.infvsr.training.trainer import load_recipe

    names = [a for a in args if "=" not in a]
    assert len(names) == 1 and names[0] in group_options("train")
    load_recipe(conf_dir() / "train", names[0], [a for a in args if "=" in a])


def check_verify(args: list[str]) -> None:
    (folder,) = args
    with pytest.MonkeyPatch.context() as mp:  # the default data_root, without $INFVSR_DATA
        mp.delenv("INFVSR_DATA", raising=False)
        cfg = compose(["dataset=" + Path(folder).name])
        assert Path(os.path.expanduser(folder)) == Path(os.path.expanduser(cfg.dataset.root))


def check_merge(args: list[str]) -> None:
    (folder,) = args
    cfg = compose(["method=" + Path(folder).name])
    assert Path(folder) == Path(cfg.output_root) / cfg.dataset.name / cfg.run_name  # where that run writes


def check_report(args: list[str]) -> None:
    from infvsr_bench.config import from_options
    from infvsr_bench.report.build import ReportOptions

    paths = [a for a in args if "=" not in a]
    assert paths and all(Path(p) == _default_runs() for p in paths)
    options = dict(a.split("=", 1) for a in args if "=" in a)
    from_options(ReportOptions, options, "report")
    if "reference" in options:
        from infvsr_bench.report.reference import REFERENCES

        assert options["reference"] in REFERENCES


def check_download(args: list[str]) -> None:
    from infvsr_bench.weights import download_names, files_for

    names = [a for a in args if "=" not in a]
    assert names and all(files_for(n) for n in names), f"{names} vs {download_names()}"
    assert all(a.split("=", 1)[0] == "weights_dir" for a in args if "=" in a)


PROGRAM_CHECKS = {"run": check_run, "build": check_build, "train": check_train, "verify": check_verify,
                  "merge": check_merge, "report": check_report, "download": check_download}


def check_pip(words: list[str]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    targets = [w for w in words[2:] if not w.startswith("-")]
    for target in targets:
        extras = re.fullmatch(r"\.\[([\w,]+)\]", target)
        if extras:
            assert set(extras.group(1).split(",")) <= set(project["optional-dependencies"])
            # The extras .ci/run installs, and those its dev extra pulls in (infvsr-bench[cluster]).
            ci = {e for m in re.findall(r'pip install -e "\.\[([\w,]+)\]"', CI) for e in m.split(",")}
            ci |= {e for d in project["optional-dependencies"]["dev"]
                   for m in re.findall(r"infvsr-bench\[([\w,]+)\]", d) for e in m.split(",")}
            assert set(extras.group(1).split(",")) <= ci
        elif "==" in target:
            assert " ".join(words) in CI, "a pinned install is the one .ci/run runs"
        else:
            assert any(re.match(re.escape(target) + r"\b", d) for d in project["dependencies"])


def check_command(command: str) -> None:
    words = _words(command)
    if command.startswith(PROGRAM):
        name, args = _subcommand(words)
        PROGRAM_CHECKS[name](args)
    elif words[:2] == ["pip", "install"]:
        check_pip(words)
    elif words[:2] == ["apt-get", "install"]:
        installed = {w for line in CI.splitlines() if "apt-get install" in line for w in line.split()}
        assert set(words[2:]) <= installed, "the system packages .ci/run installs"
    elif words[0] == "bash":
        script = REPO / words[1]
        assert script.is_file() and subprocess.run(["bash", "-n", str(script)]).returncode == 0
    elif command in ("python3 -m venv .venv", ". .venv/bin/activate"):
        assert command.replace(". ", "source ", 1) in CI
    elif command == "python -m pytest -q":
        assert CI.rstrip().splitlines()[-1] == command, ".ci/run ends with exactly the README's test command"
    elif words[:2] == ["python", "docs/make_weights_table.py"]:
        pass  # test_weights_table_is_generated runs it
    else:
        pytest.fail(f"no check for this command: {command}")


def test_readme_is_short_and_has_run_examples():
    readme = REPO / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) < 150
    assert sum(c.startswith(PROGRAM) for c in commands(readme)) >= 10


@pytest.mark.parametrize(("page", "command"), all_commands())
def test_command_is_checked(page, command):
    check_command(command)


def test_links_and_repo_paths_exist():
    """Relative links, and every repository path a page names in code, point at something real."""
    top = ("infvsr_bench/", "methods/", "vsr_datasets/", "conf/", "tests/", "benchmarks/", "reports/", "docs/")
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)#]+)\)", text):
            if "://" not in link:
                assert (page.parent / link).exists(), f"{page.name}: link {link}"
        for path in re.findall(r"`([\w./-]+)`", text) + re.findall(r"^\s*\w+\s+(\w+/[\w./-]+\.\w+)", text, re.MULTILINE):
            if path.startswith(top) and page not in RUN_ELSEWHERE:
                assert (REPO / path.rstrip("/")).exists(), f"{page.name}: {path}"


def test_weights_table_is_generated(tmp_path):
    """docs/weights.md's table is the catalogue's: the script rewrites a stale copy to the committed text."""
    doc = REPO / "docs" / "weights.md"
    stale = tmp_path / "weights.md"
    text = doc.read_text(encoding="utf-8")
    shutil.copy(doc, stale)
    stale.write_text(text.replace("| `torchvision/alexnet", "| `torchvision/stale"), encoding="utf-8")
    subprocess.run([sys.executable, str(REPO / "docs" / "make_weights_table.py"), str(stale)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    assert stale.read_text(encoding="utf-8") == text, "run: python docs/make_weights_table.py"
