"""facetrack export: write verified model graphs (ONNX) from checkpoints."""
