"""``python -m snn2hw.cli``: the ``snn2hw`` command."""
import sys

from snn2hw.cli import main

sys.exit(main())
