"""Which weight files InfVSR loads for its ``weights`` choice, decided without torch: the CLI locates them
(the ``REQUIRED_WEIGHTS`` hook) before anything heavy loads, and the adapter resolves the same ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infvsr_bench.weights import CATALOGUE, WeightFile, chosen_files

# The four official files by role (checkpoints.load_official loads them).
FILES: dict[str, WeightFile] = {
    "dit": CATALOGUE["infvsr/InfVSR.ckpt"],
    "vae": CATALOGUE["infvsr/Wan2.1_VAE.pth"],
    "ram": CATALOGUE["infvsr/ram_swin_large_14m.pth"],
    "dape": CATALOGUE["infvsr/DAPE.pth"],
}
# The infvsr-tiny model: <weights folder>/infvsr/infvsr_tiny.safetensors, else the copy shipped in tiny/.
TINY_FILE = CATALOGUE["infvsr/infvsr_tiny.safetensors"]


def files_choice(weights: str) -> str:
    """The files behind a ``weights`` choice: random loads what pretrained loads (official-layout files), labelled random."""
    return "pretrained" if weights == "random" else weights


def required_weights(options: Mapping[str, Any]) -> list[WeightFile]:
    """The files ``method=infvsr`` loads with these options (``weights``, default auto; ``weights_dir``)."""
    return chosen_files(files_choice(str(options.get("weights") or "auto")), FILES.values(), [TINY_FILE],
                        options.get("weights_dir") or None)
