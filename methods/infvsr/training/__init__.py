"""InfVSR training: causal one-step distillation with patch-wise pixel supervision and cross-chunk DMD.

``python -m infvsr_bench train <recipe>`` runs the stages of a ``conf/train/<recipe>.yaml`` recipe
(small VAE, bidirectional flow-matching teacher, causal one-step student) with the same modules and
the same pipeline step as inference.
"""
