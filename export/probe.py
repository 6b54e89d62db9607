"""What exported graphs are checked on: real faces held out from the int8 calibration faces.

Faces come from --data (or the shared data set, `export.realdata.default_data_path`); the inputs made
from them are the runtime's own crops and letterboxed images (`export.realdata.model_inputs`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.meta import ModelMeta
from export.realdata import ImageCache, RealInputs, default_data_path, model_inputs, pick

VERIFY_FACES = 64  # real faces every graph is checked on
CALIB_FACES = 128  # real faces int8 graphs are calibrated on
PARITY_BATCHES = (1, 4)


class Probe:
    """The faces graphs are checked on (maybe none) and those int8 graphs are calibrated on."""

    def __init__(self, samples: list, calib_samples: list, source: str, seed: int = 0):
        self.samples = samples
        self.calib_samples = calib_samples
        self.source = source
        self.seed = seed
        self._images = ImageCache()
        self._real: dict[tuple, RealInputs] = {}
        self._calib: dict[tuple, RealInputs] = {}

    @staticmethod
    def _key(meta: ModelMeta) -> tuple:
        return meta.kind, meta.input_size, meta.crop_scale, tuple(meta.mean), tuple(meta.std)

    def real(self, meta: ModelMeta) -> RealInputs:
        """Held-out real inputs for this model (empty when there are no faces)."""
        key = self._key(meta)
        if key not in self._real:
            self._real[key] = model_inputs(self.samples, meta, self._images)
        return self._real[key]

    def calib(self, meta: ModelMeta) -> RealInputs:
        """Calibration inputs for this model."""
        key = self._key(meta)
        if key not in self._calib:
            self._calib[key] = model_inputs(self.calib_samples, meta, self._images)
        return self._calib[key]

    def parity_inputs(self, meta: ModelMeta) -> list[tuple[str, np.ndarray]]:
        """(label, batch) pairs: random input and real inputs at batch 1 and 4."""
        s = meta.input_size
        rng = np.random.default_rng(self.seed)
        inputs = [(f"random batch {b}", rng.standard_normal((b, 3, s, s)).astype(np.float32)) for b in PARITY_BATCHES]
        real = self.real(meta)
        if len(real):
            for b in PARITY_BATCHES:
                inputs.append((f"real batch {b}", np.concatenate([real.x] * b)[:b]))
        return inputs


def _real_path(path: str) -> str:
    return os.path.realpath(path)


def make_probe(data: str | Path | None, calib: str | Path | None, verify_faces: int = VERIFY_FACES,
               calib_faces: int = CALIB_FACES) -> Probe:
    """Faces from --data (or the shared data set) held out from the --calib faces used for calibration."""
    from training.data import load_dataset
    from training.data.samples import DatasetError

    calib_all: list = []
    calib_set: list = []
    if calib is not None:
        calib_all = pick(load_dataset(calib).samples, 10 ** 9, seed=1)
        if not calib_all:
            raise InputError(f"{calib}: no usable faces to calibrate int8 graphs on")
        calib_set = calib_all[:calib_faces]
    path = Path(data) if data is not None else default_data_path()
    candidates: list = []
    if path is not None:
        try:
            candidates = load_dataset(path).samples
        except DatasetError:
            if data is not None:
                raise
            candidates = []
        if data is not None and not candidates:
            raise InputError(f"{data}: no usable faces to verify exports on")
    used = {_real_path(s.image_path) for s in calib_set}
    held_out = pick([s for s in candidates if _real_path(s.image_path) not in used], verify_faces, seed=0)
    if not held_out and calib_all:
        # no other faces: hold part of the calibration set out instead
        path = Path(calib)
        calib_set = calib_all[:min(calib_faces, max(1, 2 * len(calib_all) // 3))]
        used = {_real_path(s.image_path) for s in calib_set}
        held_out = pick([s for s in calib_all if _real_path(s.image_path) not in used], verify_faces, seed=0)
    if calib is not None and not held_out:
        raise InputError(f"{calib}: too few faces (in distinct images) to both calibrate and hold some out")
    if held_out:
        what = " (held out from calibration)" if calib is not None else ""
        source = f"real faces: {len(held_out)} from {path}{what}"
    else:
        source = ("no real face data (no --data, no $FACETRACK_SHARED_DATA, no ../shared/data/ytf-keypoints): "
                  "verified on random input only")
    return Probe(held_out, calib_set, source)
