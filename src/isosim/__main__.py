"""``python -m isosim`` is the ``isosim`` command."""

import sys

from .cli import main

sys.exit(main())
