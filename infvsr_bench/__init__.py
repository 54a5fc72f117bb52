"""infvsr-bench: streaming benchmark and evaluation suite for long-form video super-resolution."""

__version__ = "0.1.0"
