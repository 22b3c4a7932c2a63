"""``python -m services.treasury``: the treasury follower (``dopomoga treasury consume``), options as that command."""

import sys

from services.treasury.cli import app

app(["consume", *sys.argv[1:]], prog_name="python -m services.treasury")
