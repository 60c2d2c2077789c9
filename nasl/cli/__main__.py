"""``python -m nasl.cli``."""

import sys

from nasl.cli import main

sys.exit(main())
