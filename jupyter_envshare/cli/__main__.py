"""``python -m jupyter_envshare.cli``: the same as ``jupyter envshare``."""

import sys

from . import main

sys.exit(main())
