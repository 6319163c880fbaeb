"""``python -m engine.evaluate ARGS``: the same as ``python -m engine evaluate ARGS``."""

import sys

from engine.__main__ import main

raise SystemExit(main(["evaluate", *sys.argv[1:]]))
