"""Benchmark datasets: generated long-form benchmarks, user folders, and their clips (infvsr_bench.contracts)."""

from infvsr_bench.contracts import ClipEntry, Dataset
from vsr_datasets.benchmark import load_dataset

__all__ = ["ClipEntry", "Dataset", "load_dataset"]
