"""quantize package: the public names of :mod:`.quantizer`."""
from .quantizer import fold_term, quantize_layer, quantize, float_network  # noqa: F401
