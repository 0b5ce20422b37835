#!/usr/bin/env python3
"""ONNX files written by the onnx package itself (Debian's python3-onnx), for test/onnx.test.ts.

    /usr/bin/python3 test/helpers/make_onnx_reference.py OUT_DIR

Writes a few models with onnx.helper / onnx.numpy_helper / onnx.save_model (among them a QDQ
quantised MLP, whose weights mother reads dequantised), and
OUT_DIR/expected.json: for each model, its file, the files mother must list (the model and its
external data), and every tensor mother must read with its mother dtype, shape and, for float
tensors, the exact values (as onnx.numpy_helper.to_array reads them back from the saved file).
The test computes the reference statistics from those values itself.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MOTHER_DTYPE = {
    TensorProto.FLOAT: "F32", TensorProto.FLOAT16: "F16", TensorProto.BFLOAT16: "BF16", TensorProto.DOUBLE: "F64",
    TensorProto.INT8: "I8", TensorProto.UINT8: "U8", TensorProto.INT16: "I16", TensorProto.UINT16: "U16",
    TensorProto.INT32: "I32", TensorProto.INT64: "I64", TensorProto.UINT32: "U32", TensorProto.UINT64: "U64",
    TensorProto.BOOL: "BOOL",
}
FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


def bf16_values(t):
    """numpy_helper in onnx 1.12 has no bfloat16 array type: decode the bit patterns here."""
    if t.raw_data:
        bits = np.frombuffer(t.raw_data, dtype="<u2")
    else:
        bits = np.asarray(t.int32_data, dtype=np.uint32).astype(np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def tensors_of(graph, out):
    """Every initializer and Constant value of graph and its subgraphs, depth first, as mother names them."""
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                tensors_of(a.g, out)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    tensors_of(g, out)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            a = node.attribute[0]
            if a.name == "value":
                out.append((node.output[0], a.t))
            elif a.name == "value_float":
                out.append((node.output[0], helper.make_tensor(node.output[0], TensorProto.FLOAT, [], [a.f])))
            elif a.name == "value_floats":
                out.append((node.output[0], helper.make_tensor(node.output[0], TensorProto.FLOAT, [len(a.floats)], list(a.floats))))
            elif a.name == "value_int":
                out.append((node.output[0], helper.make_tensor(node.output[0], TensorProto.INT64, [], [a.i])))
            elif a.name == "value_ints":
                out.append((node.output[0], helper.make_tensor(node.output[0], TensorProto.INT64, [len(a.ints)], list(a.ints))))
    for t in graph.initializer:
        out.append((t.name, t))
    return out


def describe(path, folder):
    """expected.json entry of the saved model at path, read back with the onnx package."""
    m = onnx.load(path, load_external_data=True)
    tensors = []
    files = {os.path.relpath(path, folder)}
    raw = onnx.load(path, load_external_data=False)
    for _, t in tensors_of(raw.graph, []):
        if t.data_location == TensorProto.EXTERNAL:
            loc = dict((e.key, e.value) for e in t.external_data)["location"]
            files.add(os.path.relpath(os.path.join(os.path.dirname(path), loc), folder))
    listed = tensors_of(m.graph, [])
    by_name = dict(listed)
    # quantised weights NAME_quantized + NAME_scale + NAME_zero_point: mother reads one float view
    # NAME of (q - zero_point) x scale; the axis of a per-channel scale from the DequantizeLinear
    # node that consumes the weight (default 1). Dequantised here with numpy, in float64.
    axes = {}
    for node in m.graph.node:
        if node.op_type == "DequantizeLinear":
            axes[node.input[0]] = next((a.i for a in node.attribute if a.name == "axis"), 1)
    triples = {}
    for name, t in listed:
        base = name[: -len("_quantized")]
        if name.endswith("_quantized") and base + "_scale" in by_name and base + "_zero_point" in by_name:
            triples[name] = base
    parts = {b + s for b in triples.values() for s in ("_scale", "_zero_point")}
    for name, t in listed:
        if name in parts:
            continue
        if name in triples:
            q = numpy_helper.to_array(t).astype(np.float64)
            scale = numpy_helper.to_array(by_name[triples[name] + "_scale"]).astype(np.float64)
            zero = numpy_helper.to_array(by_name[triples[name] + "_zero_point"]).astype(np.float64)
            if scale.size > 1:
                shape = [1] * q.ndim
                shape[axes[name]] = scale.size
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            v = (q - zero) * scale
            dtype = "QUINT8" if t.data_type == TensorProto.UINT8 else "QINT8"
            tensors.append({"name": triples[name], "dtype": dtype, "shape": list(t.dims), "values": [float(x) for x in v.ravel()]})
            continue
        entry = {"name": name, "dtype": MOTHER_DTYPE[t.data_type], "shape": list(t.dims), "values": None}
        if t.data_type in FLOATS:
            v = bf16_values(t) if t.data_type == TensorProto.BFLOAT16 else numpy_helper.to_array(t).astype(np.float64)
            entry["values"] = [float(x) for x in v.ravel()]
        tensors.append(entry)
    ordered = [os.path.relpath(path, folder)] + sorted(files - {os.path.relpath(path, folder)})
    return {"file": os.path.relpath(path, folder), "files": ordered, "tensors": tensors}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240531)
    normal = lambda *shape: (0.05 * rng.standard_normal(shape)).astype(np.float32)

    # 1: raw_data (numpy_helper.from_array) and typed fields (helper.make_tensor, raw=False),
    # Constants in the main graph and in If branches and a Loop body
    inits = [
        numpy_helper.from_array(normal(8, 4), "raw.f32"),
        numpy_helper.from_array(normal(6).astype(np.float16), "raw.f16"),
        numpy_helper.from_array(normal(5).astype(np.float64), "raw.f64"),
        numpy_helper.from_array(np.arange(-3, 3, dtype=np.int8), "raw.i8"),
        numpy_helper.from_array(np.arange(4, dtype=np.int64), "raw.i64"),
        helper.make_tensor("typed.float_data", TensorProto.FLOAT, [3, 4], normal(12).tolist()),
        helper.make_tensor("typed.f16_int32_data", TensorProto.FLOAT16, [2, 5], normal(10).tolist()),
        helper.make_tensor("typed.bf16_int32_data", TensorProto.BFLOAT16, [7], normal(7).tolist()),
        helper.make_tensor("typed.double_data", TensorProto.DOUBLE, [4], normal(4).astype(np.float64).tolist()),
        helper.make_tensor("typed.int64_data", TensorProto.INT64, [3], [-1, 0, 1 << 40]),
        helper.make_tensor("typed.int32_data", TensorProto.INT32, [2], [-7, 7]),
        helper.make_tensor("typed.uint64_data", TensorProto.UINT64, [2], [0, (1 << 64) - 1]),
        helper.make_tensor("typed.uint32", TensorProto.UINT32, [2], [0, (1 << 32) - 1]),
        helper.make_tensor("typed.bool", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("typed.uint8", TensorProto.UINT8, [2], [0, 255]),
    ]
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then.c"], value=helper.make_tensor("t", TensorProto.FLOAT16, [3], normal(3).tolist()))],
        "then", [], [helper.make_tensor_value_info("then.c", TensorProto.FLOAT16, [3])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["else.c"], value_floats=normal(4).tolist())],
        "else", [], [helper.make_tensor_value_info("else.c", TensorProto.FLOAT, [4])])
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["loop.c"], value=numpy_helper.from_array(normal(2, 2), "ignored")),
         helper.make_node("Constant", [], ["loop.scalar"], value_float=0.25),
         helper.make_node("Constant", [], ["loop.int"], value_int=-3),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
        initializer=[numpy_helper.from_array(normal(3), "loop.init")])
    nodes = [
        helper.make_node("Constant", [], ["main.c"], value=numpy_helper.from_array(normal(4, 4).astype(np.float16), "x")),
        helper.make_node("Constant", [], ["main.ints"], value_ints=[1, 2, 3]),
        helper.make_node("If", ["cond"], ["if_out"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["M", "cond"], ["loop_out"], body=body),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                                            helper.make_tensor_value_info("M", TensorProto.INT64, [])],
                              [helper.make_tensor_value_info("if_out", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, producer_name="make_onnx_reference", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    p1 = os.path.join(out, "typed_and_subgraphs.onnx")
    onnx.save_model(model, p1)

    # 2: the same graph with every tensor of 16 bytes or more (attributes too) in one external file
    d2 = os.path.join(out, "external")
    os.makedirs(d2, exist_ok=True)
    p2 = os.path.join(d2, "model.onnx")
    m2 = onnx.load(p1)
    onnx.save_model(m2, p2, save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data",
                    size_threshold=16, convert_attribute=True)

    # 3: an MLP in fp32 and its fp16 copy (the usual pair of ONNX exports of one network)
    w = [normal(16, 8), normal(16), normal(4, 16), normal(4)]
    def mlp(dtype, name):
        ins = [numpy_helper.from_array(x.astype(dtype), f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}") for i, x in enumerate(w)]
        g = helper.make_graph([helper.make_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["h"], transB=1)], name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 16])], initializer=ins)
        return helper.make_model(g, producer_name="make_onnx_reference")
    p3 = os.path.join(out, "mlp_fp32.onnx")
    p4 = os.path.join(out, "mlp_fp16.onnx")
    onnx.save_model(mlp(np.float32, "fp32"), p3)
    onnx.save_model(mlp(np.float16, "fp16"), p4)

    # 5: the MLP quantised as onnxruntime's QDQ format writes it (numpy here): layers.0.weight
    # int8 symmetric per output channel (DequantizeLinear axis 0), layers.1.weight uint8 per
    # tensor; checked by onnx.checker. 6: the same with the scales and zero points (and the
    # weights) in an external data file.
    def quantise(x, kind, axis):
        red = tuple(i for i in range(x.ndim) if i != axis) if axis is not None else None
        lo = np.minimum(x.min(axis=red, keepdims=axis is not None), 0).astype(np.float64)
        hi = np.maximum(x.max(axis=red, keepdims=axis is not None), 0).astype(np.float64)
        if kind == "u8":
            scale = ((hi - lo) / 255).astype(np.float32)
            zero = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
            q = np.clip(np.round(x / scale) + zero, 0, 255).astype(np.uint8)
        else:
            scale = (2 * np.maximum(-lo, hi) / 254).astype(np.float32)
            zero = np.zeros(scale.shape, np.int8)
            q = np.clip(np.round(x / scale), -127, 127).astype(np.int8)
        return q, scale.reshape(-1) if axis is not None else scale.reshape(()), zero.reshape(-1) if axis is not None else zero.reshape(())
    qinits, qnodes = [], []
    for i, (kind, axis) in enumerate([("i8", 0), ("u8", None)]):
        name = f"layers.{i}.weight"
        q, scale, zero = quantise(w[2 * i], kind, axis)
        qinits += [numpy_helper.from_array(q, name + "_quantized"), numpy_helper.from_array(scale, name + "_scale"),
                   numpy_helper.from_array(zero, name + "_zero_point"), numpy_helper.from_array(w[2 * i + 1], f"layers.{i}.bias")]
        qnodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"], [name],
                                       **({"axis": axis} if axis is not None else {})))
    qnodes += [helper.make_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["h"], transB=1),
               helper.make_node("Gemm", ["h", "layers.1.weight", "layers.1.bias"], ["y"], transB=1)]
    qg = helper.make_graph(qnodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=qinits)
    qm = helper.make_model(qg, producer_name="make_onnx_reference", opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(qm)
    p5 = os.path.join(out, "mlp_qdq.onnx")
    onnx.save_model(qm, p5)
    d6 = os.path.join(out, "qdq_external")
    os.makedirs(d6, exist_ok=True)
    p6 = os.path.join(d6, "model.onnx")
    onnx.save_model(onnx.load(p5), p6, save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=16)

    doc = {"onnx": onnx.__version__, "models": [describe(p, out) for p in (p1, p2, p3, p4, p5, p6)]}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
