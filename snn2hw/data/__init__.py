"""data package: the public names of :mod:`.sets`."""
from .sets import (DIGITS, TEST_FRACTION, Preprocess, Dataset, fit_images, builtin, digits,
                   NPZ_KEYS, from_npz, load, take, calibration_set)  # noqa: F401
