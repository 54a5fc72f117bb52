"""Method adapters behind one streaming contract, looked up by registered name."""

from methods.base import METHODS, ClipInfo, Method, build_method

__all__ = ["METHODS", "ClipInfo", "Method", "build_method"]
