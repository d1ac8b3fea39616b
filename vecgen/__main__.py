"""``python -m vecgen`` = the ``vecgen`` command."""
import sys

try:
    from vecgen.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI itself imports: one line, as later, no traceback
    print("vecgen: interrupted before the first step; nothing was written", file=sys.stderr)  # = cli.NOTHING_RAN
    sys.exit(130)

sys.exit(main())
