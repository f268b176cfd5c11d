"""``python -m genlab`` (what ``torchrun -m genlab`` starts in each process)."""

import sys

from genlab.cli.main import main

sys.exit(main())
