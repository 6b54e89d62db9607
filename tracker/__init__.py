"""facetrack runtime: sources, backends, tracking, drawing and sinks (no torch needed for ONNX)."""

__version__ = "0.1.0"
