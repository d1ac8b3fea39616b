"""``python -m vecgen.cli`` = the ``vecgen`` command."""

import sys

from vecgen.cli import main

sys.exit(main())
