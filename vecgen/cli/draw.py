"""``vecgen draw``: flags made from :class:`vecgen.api.draw.DrawConfig`."""
from __future__ import annotations

from vecgen.cli._common import add_options as add_arguments
from vecgen.cli._common import run_verb as run

__all__ = ["add_arguments", "run"]
