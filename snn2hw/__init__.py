"""snn2hw: ANN (ONNX) -> spiking network (Sengupta et al. 2019) -> Loihi-class hardware."""
from . import lava_compat

# Lava may be imported by anything downstream (our Lava backend, user code): make sure
# the Python 3.11 fix is in place first.
lava_compat.install()

__version__ = "0.1.0"
