"""``python -m infvsr_bench``."""

import sys

from infvsr_bench.app.cli import main

sys.exit(main())
