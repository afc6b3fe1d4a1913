"""cli package: the ``snn2hw`` command (:mod:`.app`), its parser (:mod:`.parser`), the
subcommands (:mod:`.show`, :mod:`.steps`) and what they print (:mod:`.printing`,
:mod:`.tables`, :mod:`.progress`)."""
from .app import COMMANDS, main  # noqa: F401
from .parser import (build_parser, float_list, int_list, percentile_value,  # noqa: F401
                     positive_int)
from .printing import json_dump  # noqa: F401
