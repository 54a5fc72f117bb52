"""MGLD-VSR's script loads configs that hold its authors' absolute weight paths (SD 2.1, RAFT,
SpyNet) and a VAE config under configs/video_autoencoder/, which the repo ships as configs/video_vae/.
This runs the script unchanged with ``OmegaConf.load`` redirected: a missing configs/video_autoencoder/
file is read from configs/video_vae/, and every config value naming one of those weight files points
into WEIGHTS_DIR instead. Nothing in the clone is edited.

  python mgld_vsr_infer.py WEIGHTS_DIR scripts/vsr_val_ddpm_text_T_vqganfin_oldcanvas_tile.py ARGS
  (cwd: the MGLD-VSR clone; PYTHONPATH: the clone, for its ldm package)
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from _script import run_script

WEIGHT_FILES = ("v2-1_512-ema-pruned.ckpt", "raft-things.pth", "spynet_sintel_final-3d2a1287.pth")
VAE_CONFIGS = ("configs/video_autoencoder/", "configs/video_vae/")


def redirect(node: DictConfig | ListConfig, weights: Path) -> None:
    """Point every string naming one of WEIGHT_FILES at that file in ``weights``, in place."""
    keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    for key in keys:
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            redirect(value, weights)
        elif isinstance(value, str) and Path(value).name in WEIGHT_FILES:
            node[key] = str(weights / Path(value).name)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: mgld_vsr_infer.py WEIGHTS_DIR <MGLD-VSR script> [its arguments]")
    weights, script, argv = Path(sys.argv[1]).expanduser().resolve(), sys.argv[2], sys.argv[3:]
    missing = [name for name in WEIGHT_FILES if not (weights / name).is_file()]
    if missing:
        sys.exit(f"mgld_vsr_infer: {', '.join(missing)} missing in {weights} (method.weights_dir)")
    load = OmegaConf.load

    def load_redirected(path, *rest, **options):
        path = str(path)
        if not Path(path).exists() and VAE_CONFIGS[0] in path:
            path = path.replace(*VAE_CONFIGS)
        config = load(path, *rest, **options)
        redirect(config, weights)
        return config

    OmegaConf.load = load_redirected
    run_script(script, argv)


if __name__ == "__main__":
    main()
