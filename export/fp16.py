"""A float16 copy of an ONNX graph whose inputs and outputs stay float32.

Weights (initializers and constants) are stored as float16, the graph casts its float32 inputs to
float16 on entry and its float16 results back to float32 on exit, so a runtime feeds and reads
float32 exactly as with the fp32 graph. Meant for CUDA: ONNX Runtime's CPU provider lacks float16
kernels for some operators.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.errors import FacetrackError, first_line
from core.meta import ModelMeta
from export.onnx_graph import save_with_metadata, with_precision

FP16_MAX = float(np.finfo(np.float16).max)
_SUFFIX = "_fp16"


class Fp16Error(FacetrackError):
    """A graph that this converter cannot turn into a consistent float16 graph."""


def _half_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """The same tensor as float16 (values beyond the float16 range clipped, not turned into inf)."""
    values = numpy_helper.to_array(tensor).astype(np.float32)
    half = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name)


def _convert_node_attributes(node: onnx.NodeProto) -> None:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH or attr.type == onnx.AttributeProto.GRAPHS:
            raise Fp16Error(f"fp16 conversion does not handle subgraphs (node {node.name or node.op_type})")
    if node.op_type in ("Constant", "ConstantOfShape"):
        for i, attr in enumerate(node.attribute):
            if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_half_tensor(attr.t))
            elif attr.name in ("value_float", "value_floats"):
                values = [attr.f] if attr.name == "value_float" else list(attr.floats)
                array = np.array(values if attr.name == "value_floats" else values[0], dtype=np.float32)
                tensor = numpy_helper.from_array(np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16))
                node.attribute[i].CopyFrom(helper.make_attribute("value", tensor))
    elif node.op_type == "Cast":
        for attr in node.attribute:
            if attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    elif node.op_type in ("EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"):
        for attr in node.attribute:
            if attr.name == "dtype" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16


def _rename_uses(graph: onnx.GraphProto, old: str, new: str, outputs_too: bool) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        if outputs_too:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` (float32 graph inputs/outputs kept, metadata kept); checked for type consistency."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if out.functions:
        raise Fp16Error("fp16 conversion does not handle graphs with local functions")
    # inputs the ONNX operators define as float32 whatever the data's type: Resize's roi and scales
    keep_float = {node.input[i] for node in graph.node if node.op_type == "Resize"
                  for i in (1, 2) if i < len(node.input) and node.input[i]}
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in keep_float:
            graph.initializer[i].CopyFrom(_half_tensor(init))
    for node in graph.node:
        if not (node.op_type == "Constant" and set(node.output) & keep_float):
            _convert_node_attributes(node)

    initializer_names = {t.name for t in graph.initializer}
    entry, exit_ = [], []
    for value in graph.input:
        if value.name in initializer_names or value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = value.name + _SUFFIX
        _rename_uses(graph, value.name, half, outputs_too=False)
        entry.append(helper.make_node("Cast", [value.name], [half], name=f"cast_in_{value.name}",
                                      to=TensorProto.FLOAT16))
    graph_inputs = {v.name for v in graph.input}
    for value in graph.output:
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        if value.name in graph_inputs:
            raise Fp16Error(f"graph output {value.name!r} is also a graph input")
        half = value.name + _SUFFIX
        _rename_uses(graph, value.name, half, outputs_too=True)
        exit_.append(helper.make_node("Cast", [half], [value.name], name=f"cast_out_{value.name}",
                                      to=TensorProto.FLOAT))
    nodes = entry + list(graph.node) + exit_
    del graph.node[:]
    graph.node.extend(nodes)
    # intermediate types changed: let shape inference recompute them, strictly, to catch mismatches
    del graph.value_info[:]
    try:
        checked = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError / ValidationError with long texts
        raise Fp16Error(f"fp16 conversion produced an inconsistent graph ({first_line(exc)})") from None
    return checked


def write_fp16(fp32_path: Path, fp16_path: Path, meta: ModelMeta) -> Path:
    """Convert a verified fp32 graph file to a float16 one (float32 inputs/outputs), metadata precision fp16."""
    return save_with_metadata(to_float16(onnx.load(str(fp32_path))), with_precision(meta, "fp16"), fp16_path)
