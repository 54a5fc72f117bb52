"""Reports from merged run folders (infvsr_bench.results.merge): leaderboard tables, plots, the page."""
