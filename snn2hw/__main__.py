"""``python -m snn2hw`` (and ``torchrun -m snn2hw``): the ``snn2hw`` command."""
import sys

from snn2hw.cli import main

sys.exit(main())
