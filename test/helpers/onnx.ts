// Test-side ONNX writer: a small protobuf encoder and ModelProto builders, written from
// onnx/onnx.proto (field numbers) and the protobuf encoding rules, independently of the native
// reader they test. Deliberately permissive: it writes whatever it is told (repeated singular
// fields, wrong wire types, bad lengths), so that malformed files can be built with it too.

// ---- wire format ----

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

/** Base-128 varint of a non-negative integer below 2^64, or of a negative one as its 64-bit two's complement. */
export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  if (v < 0n || v >= 1n << 64n) throw new Error(`varint out of range: ${value}`);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

export function tag(field: number, wire: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wire));
}

export const fVarint = (field: number, v: number | bigint) => Buffer.concat([tag(field, WIRE.VARINT), varint(v)]);
export const fLen = (field: number, payload: Uint8Array) => Buffer.concat([tag(field, WIRE.LEN), varint(payload.length), payload]);
export const fString = (field: number, s: string | Uint8Array) => fLen(field, typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
export function fFixed32(field: number, bits: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(bits >>> 0);
  return Buffer.concat([tag(field, WIRE.I32), b]);
}
export function fFixed64(field: number, bits: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, bits));
  return Buffer.concat([tag(field, WIRE.I64), b]);
}
export const f32Bits = (x: number) => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return b.readUInt32LE();
};
export const f64Bits = (x: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.readBigUInt64LE();
};
export const floatsLE = (xs: number[]) => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return b;
};
export const doublesLE = (xs: number[]) => {
  const b = Buffer.alloc(8 * xs.length);
  xs.forEach((x, i) => b.writeDoubleLE(x, 8 * i));
  return b;
};

/** A repeated varint field, packed (one length-delimited record) or one record per value. */
export function repeatedVarint(field: number, values: (number | bigint)[], packed: boolean): Buffer {
  if (packed) return values.length ? fLen(field, Buffer.concat(values.map(varint))) : Buffer.alloc(0);
  return Buffer.concat(values.map((v) => fVarint(field, v)));
}
export function repeatedFloat(field: number, values: number[], packed: boolean): Buffer {
  if (packed) return values.length ? fLen(field, floatsLE(values)) : Buffer.alloc(0);
  return Buffer.concat(values.map((v) => fFixed32(field, f32Bits(v))));
}
export function repeatedDouble(field: number, values: number[], packed: boolean): Buffer {
  if (packed) return values.length ? fLen(field, doublesLE(values)) : Buffer.alloc(0);
  return Buffer.concat(values.map((v) => fFixed64(field, f64Bits(v))));
}

// ---- ONNX (onnx/onnx.proto) ----

/** TensorProto.DataType */
export const DT = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10,
  DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16, FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22, FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
} as const;

/** AttributeProto.AttributeType */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11 } as const;

export interface TensorSpec {
  name?: string;
  dataType?: number;
  dims?: (number | bigint)[];
  /** dims as one packed record (default) or one record per dim */
  packedDims?: boolean;
  raw?: Uint8Array;
  floatData?: number[];
  int32Data?: (number | bigint)[];
  stringData?: string[];
  int64Data?: (number | bigint)[];
  doubleData?: number[];
  uint64Data?: (number | bigint)[];
  /** typed fields packed (default) or one record per value */
  packed?: boolean;
  /** external data: the key/value entries, in order (sets data_location = EXTERNAL unless dataLocation says otherwise) */
  external?: [string, string][];
  dataLocation?: number;
  segment?: [number, number];
  docString?: string;
  /** bytes appended to the message as they are (unknown fields, repeats, broken fields) */
  extra?: Uint8Array;
}

export function tensorProto(t: TensorSpec): Buffer {
  const packed = t.packed ?? true;
  const parts: Buffer[] = [];
  if (t.dims) parts.push(repeatedVarint(1, t.dims, t.packedDims ?? true));
  if (t.dataType !== undefined) parts.push(fVarint(2, t.dataType));
  if (t.segment) parts.push(fLen(3, Buffer.concat([fVarint(1, t.segment[0]), fVarint(2, t.segment[1])])));
  if (t.floatData) parts.push(repeatedFloat(4, t.floatData, packed));
  if (t.int32Data) parts.push(repeatedVarint(5, t.int32Data, packed));
  if (t.stringData) parts.push(...t.stringData.map((s) => fString(6, s)));
  if (t.int64Data) parts.push(repeatedVarint(7, t.int64Data, packed));
  if (t.name !== undefined) parts.push(fString(8, t.name));
  if (t.raw) parts.push(fLen(9, t.raw));
  if (t.doubleData) parts.push(repeatedDouble(10, t.doubleData, packed));
  if (t.uint64Data) parts.push(repeatedVarint(11, t.uint64Data, packed));
  if (t.docString !== undefined) parts.push(fString(12, t.docString));
  if (t.external) parts.push(...t.external.map(([k, v]) => fLen(13, Buffer.concat([fString(1, k), fString(2, v)]))));
  const loc = t.dataLocation ?? (t.external ? 1 : undefined);
  if (loc !== undefined) parts.push(fVarint(14, loc));
  if (t.extra) parts.push(Buffer.from(t.extra));
  return Buffer.concat(parts);
}

export interface AttrSpec {
  name: string;
  type?: number;
  f?: number;
  i?: number | bigint;
  s?: string;
  t?: TensorSpec;
  g?: GraphSpec;
  floats?: number[];
  ints?: (number | bigint)[];
  strings?: string[];
  graphs?: GraphSpec[];
  packed?: boolean;
  extra?: Uint8Array;
}

export function attributeProto(a: AttrSpec): Buffer {
  const packed = a.packed ?? true;
  const parts: Buffer[] = [fString(1, a.name)];
  if (a.f !== undefined) parts.push(fFixed32(2, f32Bits(a.f)));
  if (a.i !== undefined) parts.push(fVarint(3, a.i));
  if (a.s !== undefined) parts.push(fString(4, a.s));
  if (a.t) parts.push(fLen(5, tensorProto(a.t)));
  if (a.g) parts.push(fLen(6, graphProto(a.g)));
  if (a.floats) parts.push(repeatedFloat(7, a.floats, packed));
  if (a.ints) parts.push(repeatedVarint(8, a.ints, packed));
  if (a.strings) parts.push(...a.strings.map((s) => fString(9, s)));
  if (a.graphs) parts.push(...a.graphs.map((g) => fLen(11, graphProto(g))));
  if (a.type !== undefined) parts.push(fVarint(20, a.type));
  if (a.extra) parts.push(Buffer.from(a.extra));
  return Buffer.concat(parts);
}

export interface NodeSpec {
  op: string;
  domain?: string;
  name?: string;
  inputs?: string[];
  outputs?: string[];
  attrs?: AttrSpec[];
  extra?: Uint8Array;
}

export function nodeProto(n: NodeSpec): Buffer {
  const parts: Buffer[] = [];
  for (const i of n.inputs ?? []) parts.push(fString(1, i));
  for (const o of n.outputs ?? []) parts.push(fString(2, o));
  if (n.name !== undefined) parts.push(fString(3, n.name));
  parts.push(fString(4, n.op));
  for (const a of n.attrs ?? []) parts.push(fLen(5, attributeProto(a)));
  if (n.domain !== undefined) parts.push(fString(7, n.domain));
  if (n.extra) parts.push(Buffer.from(n.extra));
  return Buffer.concat(parts);
}

export interface GraphSpec {
  name?: string;
  nodes?: NodeSpec[];
  initializers?: TensorSpec[];
  /** SparseTensorProto: values and indices tensors, dims */
  sparse?: { values: TensorSpec; indices: TensorSpec; dims: number[] }[];
  inputs?: string[];
  outputs?: string[];
  extra?: Uint8Array;
}

const valueInfo = (name: string) => fString(1, name);

export function graphProto(g: GraphSpec): Buffer {
  const parts: Buffer[] = [];
  for (const n of g.nodes ?? []) parts.push(fLen(1, nodeProto(n)));
  parts.push(fString(2, g.name ?? 'graph'));
  for (const t of g.initializers ?? []) parts.push(fLen(5, tensorProto(t)));
  for (const i of g.inputs ?? []) parts.push(fLen(11, valueInfo(i)));
  for (const o of g.outputs ?? []) parts.push(fLen(12, valueInfo(o)));
  for (const s of g.sparse ?? [])
    parts.push(fLen(15, Buffer.concat([fLen(1, tensorProto(s.values)), fLen(2, tensorProto(s.indices)), repeatedVarint(3, s.dims, true)])));
  if (g.extra) parts.push(Buffer.from(g.extra));
  return Buffer.concat(parts);
}

export interface ModelSpec {
  irVersion?: number;
  producer?: [string, string];
  domain?: string;
  modelVersion?: number;
  docString?: string;
  opsets?: [string, number][];
  graph?: GraphSpec;
  metadata?: [string, string][];
  extra?: Uint8Array;
}

export function modelProto(m: ModelSpec): Buffer {
  const parts: Buffer[] = [];
  if (m.irVersion !== undefined) parts.push(fVarint(1, m.irVersion));
  if (m.producer) parts.push(fString(2, m.producer[0]), fString(3, m.producer[1]));
  if (m.domain !== undefined) parts.push(fString(4, m.domain));
  if (m.modelVersion !== undefined) parts.push(fVarint(5, m.modelVersion));
  if (m.docString !== undefined) parts.push(fString(6, m.docString));
  if (m.graph) parts.push(fLen(7, graphProto(m.graph)));
  for (const [domain, version] of m.opsets ?? [['', 17]]) parts.push(fLen(8, Buffer.concat([fString(1, domain), fVarint(2, version)])));
  for (const [k, v] of m.metadata ?? []) parts.push(fLen(14, Buffer.concat([fString(1, k), fString(2, v)])));
  if (m.extra) parts.push(Buffer.from(m.extra));
  return Buffer.concat(parts);
}

/** A model with ir_version 8, one opset and the given graph. */
export function onnxModel(graph: GraphSpec, extra: Partial<ModelSpec> = {}): Buffer {
  return modelProto({ irVersion: 8, producer: ['mother-test', '1'], graph, ...extra });
}

/** A Constant node (output = name) holding the tensor `t` in its "value" attribute. */
export function constant(name: string, t: TensorSpec): NodeSpec {
  return { op: 'Constant', outputs: [name], attrs: [{ name: 'value', type: AT.TENSOR, t }] };
}

/** Little-endian uint16 bit patterns of 2-byte encoded values (F16/BF16 bytes -> int32_data values). */
export function u16s(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) out.push(bytes[i] | (bytes[i + 1] << 8));
  return out;
}
