"""The InfVSR parity data travels with the tests; where ../shared is present, the copy must equal it."""

from __future__ import annotations

import pytest
from conftest import INFVSR_REFERENCE, SHARED

from infvsr_bench.checksums import sha256_file

FILES = ("fixture_tiny.safetensors", "manifest_dape.txt", "manifest_dit_infvsr.txt", "manifest_dit_tiny.txt",
         "manifest_ram_swin_l.txt", "manifest_vae.txt", "weights_rule.py", "notes_checkpoints.md", "README.md")


def test_parity_data_is_in_the_repo():
    missing = [f for f in FILES if not (INFVSR_REFERENCE / f).is_file()]
    assert not missing, f"missing from tests/data/infvsr_reference: {missing}"


@pytest.mark.parametrize("name", FILES)
def test_copy_equals_the_shared_original(name):
    original = SHARED / "infvsr_reference" / name
    if not original.is_file():
        pytest.skip(f"{original} is not here (only the project's own machines have ../shared)")
    assert sha256_file(INFVSR_REFERENCE / name) == sha256_file(original)
