"""Static int8 quantisation of an ONNX graph (QDQ, per-channel weights) calibrated on real model inputs."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from export.verify import VerificationError

CALIB_BATCH = 8


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calib_x: np.ndarray,
                  batch: int = CALIB_BATCH) -> Path:
    """Write an int8 QDQ copy of `fp32_path` (uint8 activations, int8 per-channel weights); metadata kept."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if len(calib_x) == 0:
        raise VerificationError("int8 calibration needs at least one real input")
    proto = onnx.load(str(fp32_path))
    input_name = proto.graph.input[0].name

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{input_name: np.ascontiguousarray(calib_x[i:i + batch], dtype=np.float32)}
                                for i in range(0, len(calib_x), batch)])

        def get_next(self):
            return next(self._items, None)

    reader = Batches()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs pre-processing advice as warnings
    try:
        with tempfile.TemporaryDirectory(prefix="facetrack-int8-") as tmp:
            # the quantiser writes scratch models beside its output: keep them out of the weights folder
            out = Path(tmp) / int8_path.name
            quantize_static(str(fp32_path), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            quantized = onnx.load(str(out))
    except VerificationError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VerificationError(f"{int8_path.name}: int8 quantisation failed ({first[:200]})") from None
    finally:
        root.setLevel(level)
    # keep the fp32 graph's metadata whatever the quantiser copied
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(proto.metadata_props)
    onnx.save_model(quantized, str(int8_path), save_as_external_data=False)
    return int8_path
