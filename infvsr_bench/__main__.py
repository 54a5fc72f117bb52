"""``python -m infvsr_bench``."""

import sys

from infvsr_bench.cli import main

sys.exit(main())
