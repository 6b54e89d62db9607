"""facetrack training: dataset readers, models, training and evaluation (needs torch)."""
