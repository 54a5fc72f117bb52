"""The run stage: one clip through reader -> method -> metrics/writer (runner, its threaded pipeline),
the memory accounts kept apart, clip leases and shards for several workers on one run folder."""
