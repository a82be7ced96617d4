"""``python -m explorer_core``: see :mod:`explorer_core.cli`."""

import sys

from explorer_core.cli import main

sys.exit(main())
