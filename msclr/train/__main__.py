"""python -m msclr.train (msclr.train.cli)."""

import sys

from .cli import main

sys.exit(main())
