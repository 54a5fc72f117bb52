"""Reports from run folders alone: merge, leaderboard tables, plots."""
