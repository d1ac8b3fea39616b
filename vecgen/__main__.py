"""``python -m vecgen`` = the ``vecgen`` command."""

import sys

from vecgen import interrupts

interrupts.install()  # first: Ctrl-C during the imports below must not land inside torch's
try:
    from vecgen.cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the CLI itself imports: one line, as later, no traceback
    print("vecgen: interrupted before the first step; nothing was written", file=sys.stderr)  # = cli.NOTHING_RAN
    code = 130
sys.exit(code)
