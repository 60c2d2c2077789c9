"""``python -m nasl.fidelity RUN [options]``: the fidelity check without nasl's main parser."""

import sys

from nasl.fidelity.command import main

sys.exit(main())
