"""``python -m featurecache``: the ``featurecache`` command, for environments whose scripts
folder is not on PATH (a notebook kernel, a venv used by path)."""

from __future__ import annotations

import sys

from featurecache.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
