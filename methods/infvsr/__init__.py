"""InfVSR: streaming one-step diffusion VSR (Wan2.1 DiT + causal VAE + Swin-L/DAPE guidance)."""
