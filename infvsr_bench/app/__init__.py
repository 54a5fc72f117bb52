"""The application: the command line, one run job and its launch; the only layer that composes methods,
datasets and metrics (the core below it knows them only through infvsr_bench.contracts)."""
