"""Numbers papers report, for optional reference rows (always marked as reported, never measured)."""

from __future__ import annotations

# InfVSR paper, Table 1 (see ../shared/metric_conventions.md); dataset -> metric column -> value.
REPORTED: dict[str, dict[str, dict[str, float]]] = {
    "InfVSR (reported)": {
        "udm10": {"psnr": 24.86, "ssim": 0.7274, "lpips": 0.2972, "dists": 0.1422, "musiq": 62.88,
                  "clipiqa": 0.5142, "dover": 0.7826, "ewarp": 1.95},
        "spmcs": {"psnr": 22.25, "ssim": 0.5697, "lpips": 0.3166, "dists": 0.1742, "musiq": 67.75,
                  "clipiqa": 0.5319, "dover": 0.7302, "ewarp": 1.25},
        "mvsr4x": {"psnr": 22.49, "ssim": 0.7373, "lpips": 0.3452, "dists": 0.2107, "musiq": 64.03,
                   "clipiqa": 0.5229, "dover": 0.6872, "ewarp": 1.03},
        "videolq": {"musiq": 56.26, "clipiqa": 0.4454, "dover": 0.7556, "ewarp": 7.52},
        "movielq": {"musiq": 68.65, "clipiqa": 0.5888, "dover": 0.8447, "ewarp": 2.88},
    },
}
REFERENCES = {"infvsr_paper": ("InfVSR (reported)",)}
# Directions of the reported metrics, for reference-only columns.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "dists": False, "musiq": True,
                    "clipiqa": True, "dover": True, "ewarp": False}
