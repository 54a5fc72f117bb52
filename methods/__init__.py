"""Method adapters behind one streaming contract (infvsr_bench.contracts), looked up by registered name."""

from infvsr_bench.contracts import ClipInfo, Method
from methods.base import METHOD_CONFIGS, METHODS, build_method, register_method

__all__ = ["METHODS", "METHOD_CONFIGS", "ClipInfo", "Method", "build_method", "register_method"]
