"""calibrate package: the public names of :mod:`.methods`."""
from .methods import Calibration, input_scale, thresholds, max_act, spike_norm, METHODS, calibrate  # noqa: F401
