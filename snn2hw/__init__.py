"""snn2hw: ANN (ONNX) -> spiking network (Sengupta et al. 2019) -> Loihi-class hardware."""

__version__ = "0.1.0"
