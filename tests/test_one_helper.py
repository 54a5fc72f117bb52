"""One helper for each identity hash: canonical-JSON digests and file digests are computed in
``infvsr_bench/checksums.py`` only; a run's fingerprint, a training stage's digest and a benchmark
recipe's hash all go through ``json_digest``, so they cannot drift apart in how they serialise."""

from __future__ import annotations

import ast
import hashlib

from conftest import REPO

from infvsr_bench.checksums import json_digest, sha256_file

PACKAGES = ("infvsr_bench", "methods", "vsr_datasets")


def test_json_digest_is_sha256_of_python_canonical_json():
    # json.dumps(sort_keys=True) with its default separators, written out by hand: ", " and ": ".
    text = '{"a": [1, 2.5, "x"], "b": {"c": null, "d": true}, "e": "(1, 2)"}'
    assert json_digest({"e": "(1, 2)", "b": {"d": True, "c": None}, "a": [1, 2.5, "x"]}) == \
        hashlib.sha256(text.encode()).hexdigest()
    # what JSON lacks becomes its str(): a Path is its text
    from pathlib import Path
    assert json_digest({"p": Path("a/b")}) == hashlib.sha256(b'{"p": "a/b"}').hexdigest()


def test_the_three_identities_are_json_digests(tmp_path):
    from infvsr_bench.results.record import fingerprint
    from vsr_datasets.builder import CONTENT_KEYS, recipe_sha256

    identity = {"method": {"name": "bicubic"}, "metrics": [{"name": "psnr"}]}
    assert fingerprint(identity) == json_digest(identity)
    recipe = {k: f"value of {k}" for k in CONTENT_KEYS} | {"root": "not content"}
    assert recipe_sha256(recipe) == json_digest({k: recipe[k] for k in CONTENT_KEYS})
    file = tmp_path / "f.bin"
    file.write_bytes(b"abc" * 1000)
    assert sha256_file(file) == hashlib.sha256(b"abc" * 1000).hexdigest()


def _hash_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for sha256 taken over json.dumps(...) and for hashlib.file_digest."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "hashlib":
            if node.func.attr == "file_digest":
                found.append((node.lineno, "hashlib.file_digest"))
            elif any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "dumps"
                     for arg in node.args for n in ast.walk(arg)):
                found.append((node.lineno, f"hashlib.{node.func.attr}(json.dumps(...))"))
    return found


def test_no_other_module_hashes_json_or_files_itself():
    copies = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.relative_to(REPO).as_posix() == "infvsr_bench/checksums.py":
                continue
            copies += [f"{path.relative_to(REPO)}:{line}: {what}"
                       for line, what in _hash_calls(ast.parse(path.read_text(encoding="utf-8")))]
    assert copies == []


def test_the_scan_finds_a_copy():
    tree = ast.parse("import hashlib, json\nx = hashlib.sha256(json.dumps({}).encode()).hexdigest()\n"
                     "with open('f', 'rb') as f:\n    y = hashlib.file_digest(f, 'sha256')\n")
    assert sorted(what for _, what in _hash_calls(tree)) == ["hashlib.file_digest", "hashlib.sha256(json.dumps(...))"]
