"""`python -m audit` / the `audit` console script."""

from __future__ import annotations

import sys

from audit.cli import main

if __name__ == "__main__":
    sys.exit(main())
