"""Synthetic media: seeded GT frame sources and the GT -> LR degradations, shared by benchmark building
(vsr_datasets.builder) and training (methods.infvsr.training.data)."""
