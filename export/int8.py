"""int8 graphs: static quantisation (QDQ, per-channel weights) of the convolutions, calibrated on real model
inputs, and the rule that refuses an int8 graph losing too much accuracy against its fp32 graph.

Only Conv nodes are quantised (`QUANTIZED_OPS`): they are nearly all of the compute. The heads after them
stay float: quantising the SimCC head's MatMul and Softmax (1-D bin logits, decoded by soft-argmax) cost
the default landmark model 0.06 NME points for no further speed, and quantising every node as before cost it
6.3 points (measured on 400 YouTube-Faces crops, calibrated on 200 HELEN crops: docs/benchmarks.md). The
convolutions that read the image itself stay float too: quantising the normalised pixels to 8 bits cost
0.009-0.014 points of the 0.01 the whole graph lost, and skipping it is faster (no input quantisation).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from core.errors import first_line
from core.meta import ModelMeta
from export.onnx_graph import save_with_metadata, with_precision
from export.verify import VerificationError

CALIB_BATCH = 8
QUANTIZED_OPS = ("Conv",)  # node types quantised; everything else runs in float
INT8_MAX_NME_LOSS = 0.5  # NME points (% of inter-ocular distance) an int8 landmark graph may lose
INT8_MAX_IOU_LOSS = 0.02  # mean IoU an int8 box graph may lose


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calib_x: np.ndarray,
                  batch: int = CALIB_BATCH) -> Path:
    """Write an int8 QDQ copy of `fp32_path` (its Conv nodes but those reading the graph's input: uint8
    activations, int8 per-channel weights; the rest float); metadata kept."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if len(calib_x) == 0:
        raise VerificationError("int8 calibration needs at least one real input")
    proto = onnx.load(str(fp32_path))
    input_name = proto.graph.input[0].name
    graph_inputs = {i.name for i in proto.graph.input}
    first_convs = [n.name for n in proto.graph.node if n.op_type == "Conv" and n.input[0] in graph_inputs]

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
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=first_convs)
            quantized = onnx.load(str(out))
    except VerificationError:
        raise
    except Exception as exc:
        raise VerificationError(f"{int8_path.name}: int8 quantisation failed ({first_line(exc)})") from None
    finally:
        root.setLevel(level)
    # keep the fp32 graph's metadata whatever the quantiser copied
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(proto.metadata_props)
    onnx.save_model(quantized, str(int8_path), save_as_external_data=False)
    return int8_path


def write_int8(fp32_path: Path, int8_path: Path, meta: ModelMeta, calib_x: np.ndarray) -> Path:
    """Quantise a verified fp32 graph on calibration inputs calib_x (N,3,S,S) float32; metadata precision int8."""
    quantize_int8(fp32_path, int8_path, calib_x)
    return save_with_metadata(onnx.load(str(int8_path)), with_precision(meta, "int8"), int8_path)


def int8_unit(meta: ModelMeta) -> str:
    """What an int8 graph's accuracy cost is measured in: mean IoU (box, detector) or NME points (landmarks)."""
    return "IoU" if meta.kind in ("box", "detector") else "NME points"


def int8_loss(meta: ModelMeta, base: float, value: float) -> float:
    """How much worse the int8 graph is: NME points gained (landmarks) or mean IoU lost (box, detector)."""
    return base - value if meta.kind in ("box", "detector") else value - base


def refuse_int8(file: str, meta: ModelMeta, base: float, value: float, n: int,
                max_nme_loss: float = INT8_MAX_NME_LOSS, max_iou_loss: float = INT8_MAX_IOU_LOSS) -> float:
    """The int8 graph's loss against fp32 (`int8_loss`) on n held-out inputs; a VerificationError when it
    is beyond the limit (max_nme_loss NME points for landmarks, max_iou_loss mean IoU for boxes) or NaN."""
    loss = int8_loss(meta, base, value)
    unit = int8_unit(meta)
    limit = max_iou_loss if unit == "IoU" else max_nme_loss
    if not loss <= limit:
        raise VerificationError(f"{file}: int8 loses {loss:.3f} {unit} against fp32 on {n} held-out real "
                                f"inputs (limit {limit}); refused")
    return loss
