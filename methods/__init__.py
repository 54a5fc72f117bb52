"""Method adapters behind one streaming contract (infvsr_bench.contracts), looked up by registered name."""

from infvsr_bench.contracts import ClipInfo, Method
from methods.base import METHODS, build_method

__all__ = ["METHODS", "ClipInfo", "Method", "build_method"]
