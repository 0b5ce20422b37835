// Models of very many tiny tensors (issue 15.5: tables and recover must stay linear in the
// tensor count): `count` square 2 x 2 F32 tensors named layers.<i>.weight, written straight
// into one safetensors file (side x side with `side`) without building a TensorSpec per tensor.
import * as fs from 'node:fs';

/** Writes `count` 2 x 2 F32 tensors; the values come from `seed` and, with `noise`, a model
 *  derived from the one with the same seed and noise 0 (values + noise * a second stream). */
export function writeManyTensors(file: string, count: number, seed: number, noise = 0, side = 2): void {
  const parts: string[] = [];
  const b = 4 * side * side;
  for (let i = 0; i < count; i++) parts.push(`"layers.${i}.weight":{"dtype":"F32","shape":[${side},${side}],"data_offsets":[${i * b},${i * b + b}]}`);
  let json = `{${parts.join(',')}}`;
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const data = new Float32Array(count * side * side);
  let s = seed >>> 0 || 1, t = (seed * 7919 + 17) >>> 0 || 1;
  const next = (x: number) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  for (let i = 0; i < data.length; i++) {
    s = next(s);
    let v = s / 2 ** 32 - 0.5;
    if (noise) { t = next(t); v += noise * (t / 2 ** 32 - 0.5); }
    data[i] = v;
  }
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json, 'utf8'), Buffer.from(data.buffer)]));
}
