"""facetrack's base layer: the contract that the runtime, training and export share.

Point names and model metadata (`meta`), pure geometry, errors and exit codes, image reading, the
model input/output codec (`preprocess`, `postprocess`), the frame records (`frame`), signal handling,
the ONNX Runtime session factory, metrics, the weights manifest and the model definitions that
checkpoints rebuild (`models`, the only module here that imports torch). It imports nothing from
`tracker`, `training`, `export` or `facetrack` (tests/test_layers.py).
"""

__version__ = "0.1.0"
