"""``python -m sdrl`` runs the command line."""

import sys

from sdrl.cli import main

sys.exit(main())
