"""``python -m nasl.fidelity RUN [options]``: the fidelity check without nasl's main parser."""

import sys

from nasl.hardware.omp import choose_wait_policy

choose_wait_policy()  # before nasl.fidelity.command imports torch (nasl.hardware.omp)

from nasl.fidelity.command import main  # noqa: E402

sys.exit(main())
