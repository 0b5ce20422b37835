#!/usr/bin/env python3
"""ONNX files written by the onnx package itself (Debian's python3-onnx), for test/onnx.test.ts.

    /usr/bin/python3 test/helpers/make_onnx_reference.py OUT_DIR

Writes a few models with onnx.helper / onnx.numpy_helper / onnx.save_model, and
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
    for name, t in tensors_of(m.graph, []):
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

    doc = {"onnx": onnx.__version__, "models": [describe(p, out) for p in (p1, p2, p3, p4)]}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
