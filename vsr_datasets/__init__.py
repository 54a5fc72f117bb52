"""Benchmark datasets: generated long-form benchmarks, user folders, and their clips."""

from vsr_datasets.benchmark import ClipEntry, Dataset, load_dataset

__all__ = ["ClipEntry", "Dataset", "load_dataset"]
