// The GGUF block types (Q8_0 ... Q6_K, MXFP4): every decoder and statistics path against an
// independent numpy dequantiser (test/helpers/gguf_reference.py) on random and adversarial
// blocks, the SIMD paths against the scalar one, and hand-computed values of each layout.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native, STAT_FIELDS } from '../lib/core/binding';
import { GGML_TYPES, QUANT_TYPES, QuantType } from './helpers/gguf';
import { close, refStats, RefStats, Rng } from './helpers/reference';
import { encodeF16 } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const addon = native();
const PATHS = addon.simdPaths();
const F = Object.fromEntries(STAT_FIELDS.map((k, i) => [k, i])) as Record<(typeof STAT_FIELDS)[number], number>;
const REFERENCE = path.join(__dirname, 'helpers', 'gguf_reference.py');

// Byte offsets of each type's f16 scales inside a block (ggml-common.h).
const F16_FIELDS: Record<QuantType, number[]> = {
  Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2],
  Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], MXFP4: [],
};
// Byte offsets of the E8M0 (power-of-two) scales: MXFP4's, whose every byte value is a scale.
const E8M0_FIELDS: Partial<Record<QuantType, number[]>> = { MXFP4: [0] };
const E8M0_EXTREME = [0, 1, 2, 126, 127, 128, 253, 254, 255];
// Byte ranges of the integer sub-block scales of the K types.
const SCALE_BYTES: Partial<Record<QuantType, [number, number]>> = { Q2_K: [0, 16], Q3_K: [96, 108], Q4_K: [4, 16], Q5_K: [4, 16], Q6_K: [192, 208] };

const f16 = (x: number) => encodeF16(x);
const F16_EXTREME = [65504, -65504, 2 ** -14, -(2 ** -14), 2 ** -24, -(2 ** -24), 3 * 2 ** -24, 0x3ff * 2 ** -24, 1, -1, 0, -0];

type Filler = (rng: Rng, t: QuantType, block: Uint8Array, index: number) => void;

function setF16(block: Uint8Array, at: number, h: number): void {
  block[at] = h & 0xff;
  block[at + 1] = h >> 8;
}
function randomBytes(rng: Rng, b: Uint8Array): void {
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rng.next() * 256);
}
function saneScale(rng: Rng): number {
  return f16((rng.next() < 0.5 ? -1 : 1) * 2 ** (-12 + 8 * rng.next()));
}
/** Sets every E8M0 scale byte of the type to pick() (MXFP4; nothing for the f16-scaled types). */
function setE8M0(t: QuantType, b: Uint8Array, pick: () => number): void {
  for (const at of E8M0_FIELDS[t] ?? []) b[at] = pick();
}
const saneE8M0 = (rng: Rng) => 127 - 12 + Math.floor(8 * rng.next());

const CATEGORIES: Record<string, Filler> = {
  random: (rng, t, b) => {
    randomBytes(rng, b);
    for (const at of F16_FIELDS[t]) setF16(b, at, saneScale(rng));
    setE8M0(t, b, () => saneE8M0(rng));
  },
  'zero scales': (rng, t, b, i) => {
    randomBytes(rng, b);
    for (const at of F16_FIELDS[t]) setF16(b, at, i % 3 === 0 ? saneScale(rng) : 0);
    setE8M0(t, b, () => (i % 3 === 0 ? saneE8M0(rng) : 0)); // E8M0 has no zero: 0 is its smallest, 2^-127
    const sc = SCALE_BYTES[t];
    if (sc && i % 2) b.fill(0, sc[0], sc[1]);
  },
  'extreme scales': (rng, t, b) => {
    randomBytes(rng, b);
    for (const at of F16_FIELDS[t]) setF16(b, at, f16(F16_EXTREME[Math.floor(rng.next() * F16_EXTREME.length)]));
    setE8M0(t, b, () => E8M0_EXTREME[Math.floor(rng.next() * E8M0_EXTREME.length)]);
  },
  'subnormal scales': (rng, t, b) => {
    randomBytes(rng, b);
    for (const at of F16_FIELDS[t]) setF16(b, at, (rng.next() < 0.5 ? 0x8000 : 0) | (1 + Math.floor(rng.next() * 0x3ff)));
    setE8M0(t, b, () => Math.floor(rng.next() * 3)); // values below float32's normal range
  },
  'inf and nan scales': (rng, t, b, i) => {
    randomBytes(rng, b);
    const special = [0x7c00, 0xfc00, 0x7e00, 0x7c01];
    for (const at of F16_FIELDS[t]) setF16(b, at, i % 4 === 1 ? special[Math.floor(rng.next() * 4)] : saneScale(rng));
    setE8M0(t, b, () => (i % 4 === 1 ? 255 : saneE8M0(rng))); // the byte the OCP spec calls NaN: ggml's 2^128 (finite)
  },
  // quants run through every value (every byte, hence every nibble, 2-bit field and high bit);
  // the integer scales of the K types through every value too
  'every quant and scale value': (rng, t, b, i) => {
    for (let k = 0; k < b.length; k++) b[k] = (k * 37 + i * 11) & 0xff;
    for (const at of F16_FIELDS[t]) setF16(b, at, saneScale(rng));
  },
  // every quant and integer scale 0: a constant tensor (nonzero for Q4_0, Q4_1, Q5_0, Q5_1,
  // Q3_K; scipy: undefined skewness and kurtosis)
  constant: (_rng, t, b) => {
    b.fill(0);
    for (const at of F16_FIELDS[t]) setF16(b, at, f16(0.25));
  },
  // type-1 blocks far from zero relative to their spread
  'mean >> std': (rng, t, b) => {
    randomBytes(rng, b);
    const f = F16_FIELDS[t];
    if (f.length > 0) setF16(b, f[0], f16(2 ** -20));
    if (f.length > 1) setF16(b, f[1], f16(t.endsWith('_1') ? 1000 : -30));
    setE8M0(t, b, () => 127 - 20); // a symmetric type: tiny values only
  },
  // the symmetric types (one scale, no offset) with every quant near the top of its range: the
  // mean dwarfs the spread, so the raw power sums of the fast paths would cancel (they must
  // hand such chunks to the exact path)
  'symmetric, mean >> std': (rng, t, b) => {
    const near = [0xee, 0xef, 0xfe, 0xff];
    for (let k = 0; k < b.length; k++)
      b[k] = t === 'Q8_0' ? 120 + Math.floor(rng.next() * 8) : t === 'MXFP4' ? [0x66, 0x67, 0x76, 0x77][Math.floor(rng.next() * 4)] : near[Math.floor(rng.next() * 4)];
    for (const at of F16_FIELDS[t]) setF16(b, at, f16(2 ** (-12 + 8 * rng.next())));
    setE8M0(t, b, () => saneE8M0(rng));
    if (t === 'Q6_K') {
      b.fill(0xff, 128, 192); // high bits 3: q in {62, 63}
      b.fill(5, 192, 208); // one positive sub-block scale
    }
    if (t === 'Q3_K') {
      b.fill(0xff, 0, 32); // every high bit set: q = the low 2 bits, 3 but for about 1 in 400
      for (let k = 32; k < 96; k++) b[k] = rng.next() < 0.99 ? 0xff : 0xfe;
      b.fill(0xff, 96, 108); // every sub-block scale 63 - 32
    }
  },
  // Q4_K / Q5_K with every sub-block's 6-bit scale and min 63 and a negative dmin: all values
  // 1890 plus a tiny spread (the other types: as 'random')
  'one shared minimum': (rng, t, b) => {
    randomBytes(rng, b);
    const f = F16_FIELDS[t];
    for (const at of f) setF16(b, at, saneScale(rng));
    setE8M0(t, b, () => saneE8M0(rng));
    if (t === 'Q4_K' || t === 'Q5_K') {
      setF16(b, f[0], f16(2 ** -20));
      setF16(b, f[1], f16(-30));
      b.fill(0xff, 4, 16);
    }
  },
};

const BLOCK_COUNTS_32 = [1, 3, 8, 9, 64, 65, 130];
const BLOCK_COUNTS_256 = [1, 7, 8, 9, 17];

interface Case {
  type: QuantType;
  category: string;
  blocks: number;
  bytes: Uint8Array;
  ref?: Float64Array;
}

/** Decodes every case with the numpy reference, in one Python run. */
function referenceDecode(cases: Case[]): void {
  const tmp = tmpDir('mother-gguf-ref-');
  try {
    const jobs = cases.map((c, i) => {
      const input = path.join(tmp.dir, `${i}.bin`);
      fs.writeFileSync(input, c.bytes);
      return { type: c.type, input, output: path.join(tmp.dir, `${i}.f64`) };
    });
    fs.writeFileSync(path.join(tmp.dir, 'jobs.json'), JSON.stringify(jobs));
    const r = spawnSync('/usr/bin/python3', [REFERENCE, 'batch', path.join(tmp.dir, 'jobs.json')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`gguf_reference.py failed: ${r.stderr}`);
    jobs.forEach((j, i) => {
      const b = fs.readFileSync(j.output);
      cases[i].ref = new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8).slice();
    });
  } finally {
    tmp.cleanup();
  }
}

function makeCases(): Case[] {
  const cases: Case[] = [];
  let seed = 1;
  for (const type of QUANT_TYPES) {
    const { elems, bytes } = GGML_TYPES[type];
    for (const [category, fill] of Object.entries(CATEGORIES)) {
      for (const blocks of elems === 32 ? BLOCK_COUNTS_32 : BLOCK_COUNTS_256) {
        const rng = new Rng(seed++);
        const buf = new Uint8Array(blocks * bytes);
        for (let i = 0; i < blocks; i++) fill(rng, type, buf.subarray(i * bytes, (i + 1) * bytes), i);
        cases.push({ type, category, blocks, bytes: buf });
      }
    }
  }
  return cases;
}

function sameValue(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : a === b;
}

/** Compares native moments with the reference statistics; the first mismatch, or null. */
function mismatch(got: Float64Array, ref: RefStats, rel = 1e-9): string | null {
  if (got[F.count] !== ref.finite) return `count ${got[F.count]} != ${ref.finite}`;
  if (got[F.nan] !== ref.nan) return `nan ${got[F.nan]} != ${ref.nan}`;
  if (got[F.inf] !== ref.inf) return `inf ${got[F.inf]} != ${ref.inf}`;
  if (!(Object.is(got[F.min], ref.min) || got[F.min] === ref.min)) return `min ${got[F.min]} != ${ref.min}`;
  if (!(Object.is(got[F.max], ref.max) || got[F.max] === ref.max)) return `max ${got[F.max]} != ${ref.max}`;
  const checks: [string, number, number, number][] = [
    // the mean relative to the spread when the spread dwarfs it (as for the float kernels)
    ['mean', got[F.mean], ref.mean, ref.std],
    ['std', got[F.std], ref.std, 0],
    ['skewness', got[F.skewness], ref.skewness, 1e-4],
    ['kurtosis', got[F.kurtosis], ref.kurtosis, 1e-4],
    ['l2', got[F.l2], ref.l2, 0],
    ['absMean', got[F.absMean], ref.absMean, 0],
  ];
  for (const [name, a, b, floor] of checks)
    if (!close(a, b, rel, floor)) return `${name} ${a} vs reference ${b} (rel err ${Math.abs(a - b) / Math.abs(b)})`;
  return null;
}

describe('GGUF block types vs the numpy reference dequantiser', () => {
  const cases = makeCases();
  beforeAll(() => referenceDecode(cases));

  test('the kernel sets include avx2 here, or the fast paths are not under test', () => {
    if (!PATHS.includes('avx2')) console.warn('gguf kernels: no AVX2 on this CPU, only the scalar path is tested');
    expect(PATHS[0]).toBe('scalar');
  });

  for (const type of QUANT_TYPES) {
    test(`${type}: decoding equals the reference bit for bit, every category, size and path, unaligned`, () => {
      const failures: string[] = [];
      for (const c of cases.filter((x) => x.type === type)) {
        for (const offset of [0, 1, 3]) {
          const host = new Uint8Array(c.bytes.length + 8);
          host.set(c.bytes, offset);
          const view = host.subarray(offset, offset + c.bytes.length);
          for (const simd of PATHS) {
            const got = addon.testing.decode(view, type, simd);
            const ref = c.ref!;
            if (got.length !== ref.length) { failures.push(`${c.category} x${c.blocks} ${simd}: ${got.length} values, want ${ref.length}`); continue; }
            const i = ref.findIndex((v, k) => !sameValue(got[k], v));
            if (i >= 0) failures.push(`${c.category} x${c.blocks} +${offset} ${simd}: element ${i} = ${got[i]}, reference ${ref[i]}`);
            const anyBad = ref.some((v) => !Number.isFinite(v));
            if (got.bad !== anyBad) failures.push(`${c.category} x${c.blocks} ${simd}: NaN/Inf flag ${got.bad}, want ${anyBad}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });

    test(`${type}: statistics within 1e-9 of the reference, every category, size and path, unaligned`, () => {
      const failures: string[] = [];
      for (const c of cases.filter((x) => x.type === type)) {
        const truth = refStats(c.ref!);
        for (const offset of [0, 1, 3]) {
          const host = new Uint8Array(c.bytes.length + 8);
          host.set(c.bytes, offset);
          const view = host.subarray(offset, offset + c.bytes.length);
          for (const simd of PATHS) {
            const why = mismatch(addon.testing.moments(view, type, simd), truth);
            if (why) failures.push(`${c.category} x${c.blocks} +${offset} ${simd}: ${why}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }

  test('constant blocks: skewness and kurtosis undefined (null), std exactly 0', () => {
    for (const c of cases.filter((x) => x.category === 'constant')) {
      for (const simd of PATHS) {
        const got = addon.testing.moments(c.bytes, c.type, simd);
        expect({ t: c.type, simd, std: got[F.std], skew: Number.isNaN(got[F.skewness]) }).toEqual({ t: c.type, simd, std: 0, skew: true });
      }
    }
  });
});

describe('GGUF block types: the SIMD paths against the scalar one', () => {
  test('to 1e-12 on long realistic tensors (1M elements, ggml-like scales)', () => {
    const rng = new Rng(42);
    for (const type of QUANT_TYPES) {
      const { elems, bytes } = GGML_TYPES[type];
      const blocks = Math.ceil(1_000_000 / elems);
      const buf = new Uint8Array(blocks * bytes);
      for (let i = 0; i < blocks; i++) CATEGORIES.random(rng, type, buf.subarray(i * bytes, (i + 1) * bytes), i);
      const scalar = addon.testing.moments(buf, type, 'scalar');
      for (const simd of PATHS) {
        const got = addon.testing.moments(buf, type, simd);
        const floors: number[] = STAT_FIELDS.map(() => 0);
        floors[F.mean] = scalar[F.std];
        floors[F.skewness] = 1;
        floors[F.kurtosis] = 1;
        for (let k = 0; k < STAT_FIELDS.length; k++)
          if (!close(got[k], scalar[k], 1e-12, floors[k])) throw new Error(`${type} ${simd} ${STAT_FIELDS[k]}: ${got[k]} vs scalar ${scalar[k]}`);
      }
    }
  });
});

describe('GGUF block layouts: values computed by hand from the format description', () => {
  const block = (type: QuantType) => new Uint8Array(GGML_TYPES[type].bytes);
  const dec = (type: QuantType, b: Uint8Array) => Array.from(addon.testing.decode(b, type, 'scalar'));

  test('Q8_0: y = d q, q signed', () => {
    const b = block('Q8_0');
    setF16(b, 0, f16(0.5));
    b[2] = 0x80; // -128
    b[3] = 0x7f;
    b[33] = 0xff; // -1
    const y = dec('Q8_0', b);
    expect([y[0], y[1], y[2], y[31]]).toEqual([-64, 63.5, 0, -0.5]);
  });

  test('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, y = d (q - 8)', () => {
    const b = block('Q4_0');
    setF16(b, 0, f16(2));
    b[2] = 0xf0; // element 0: 0 -> -16; element 16: 15 -> 14
    b[17] = 0x9a; // element 15: 10 -> 4; element 31: 9 -> 2
    const y = dec('Q4_0', b);
    expect([y[0], y[16], y[15], y[31], y[1]]).toEqual([-16, 14, 4, 2, -16]);
  });

  test('Q4_1 and Q5_1: y = d q + m; Q5_0/Q5_1: bit i of qh is element i\'s fifth bit', () => {
    const b = block('Q4_1');
    setF16(b, 0, f16(0.5));
    setF16(b, 2, f16(-3));
    b[4] = 0x3c; // element 0: 12 -> 3; element 16: 3 -> -1.5
    expect([dec('Q4_1', b)[0], dec('Q4_1', b)[16]]).toEqual([3, -1.5]);
    const c = block('Q5_0');
    setF16(c, 0, f16(1));
    c[2] = 0x01; // qh bit 0: element 0
    c[5] = 0x80; // qh bit 31: element 31
    c[6] = 0x00;
    c[21] = 0xf0; // element 15: 0, element 31: 15 (+16)
    const y = dec('Q5_0', c);
    expect([y[0], y[1], y[15], y[31]]).toEqual([0, -16, -16, 15]);
    const d = block('Q5_1');
    setF16(d, 0, f16(1));
    setF16(d, 2, f16(100));
    d[4 + 2] = 0x01; // qh bit 16: element 16
    d[8] = 0x50; // element 0: 0, element 16: 5 + 16
    expect([dec('Q5_1', d)[0], dec('Q5_1', d)[16]]).toEqual([100, 121]);
  });

  test('Q4_K: 6-bit scale/min packing of all 8 sub-blocks, y = d sc q - dmin m', () => {
    const b = block('Q4_K');
    setF16(b, 0, f16(1));
    setF16(b, 2, f16(0.5));
    const sc = [1, 2, 3, 63, 33, 17, 48, 5];
    const mn = [4, 0, 63, 7, 62, 1, 16, 32];
    const s = b.subarray(4, 16);
    for (let j = 0; j < 4; j++) {
      s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      s[j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    const qs = b.subarray(16);
    for (let g = 0; g < 4; g++) qs[32 * g] = 0x21; // sub-block 2g: q = 1, sub-block 2g + 1: q = 2 (their first elements)
    const y = dec('Q4_K', b);
    for (let j = 0; j < 8; j++) {
      const q = j % 2 ? 2 : 1;
      expect({ j, y: y[32 * j] }).toEqual({ j, y: sc[j] * q - 0.5 * mn[j] });
      expect({ j, y: y[32 * j + 1] }).toEqual({ j, y: 0 - 0.5 * mn[j] }); // q = 0
    }
  });

  test('Q5_K: the fifth bit of element 64 j + 32 t + l is bit 2 j + t of qh[l]', () => {
    const b = block('Q5_K');
    setF16(b, 0, f16(1));
    for (let j = 0; j < 4; j++) b[4 + j] = 1; // sub-blocks 0..3: scale 1, min 0
    b[16 + 3] = 0b100; // qh[3], bit 2: j = 1, t = 0 -> element 64 + 3
    const y = dec('Q5_K', b);
    expect([y[67], y[3], y[35]]).toEqual([16, 0, 0]);
  });

  test('Q2_K and Q3_K: 2-bit quants, element 128 h + 32 g + l in bits 2g of qs[32 h + l]', () => {
    const b = block('Q2_K');
    setF16(b, 80, f16(1));
    setF16(b, 82, f16(1));
    b.fill(0x21, 0, 16); // every sub-block: scale 1, min 2
    b[16 + 32 + 5] = 0b11 << 4; // h = 1, l = 5, g = 2: element 128 + 64 + 5
    const y = dec('Q2_K', b);
    expect([y[197], y[0]]).toEqual([3 - 2, -2]);
    const c = block('Q3_K');
    setF16(c, 108, f16(1));
    // scale j: low nibble of byte j (j < 8), high bits from bytes 8..11; make scale 0 = 33 (-> +1)
    c[96] = 0x01;
    c[96 + 8] = 0x02; // bits 0..1 of byte 8: high bits of scale 0 = 2 -> 33 - 32 = 1
    c[0] = 0x01; // hmask[0] bit 0: element 0 has its high bit: q = low
    c[32] = 0x03; // element 0: low bits 3
    const y3 = dec('Q3_K', c);
    expect(y3[0]).toBe(3);
    expect(y3[1]).toBe(-4); // low 0, high bit clear: 0 - 4
  });

  test('MXFP4: an E8M0 scale byte 2^(e - 127), then FP4 E2M1 nibbles (low: elements 0..15, high: 16..31)', () => {
    const b = block('MXFP4');
    b[0] = 127; // scale 1
    b[1] = 0xf7; // element 0: 0b0111 = +6; element 16: 0b1111 = -6
    b[16] = 0x19; // element 15: 0b1001 = -0.5; element 31: 0b0001 = +0.5
    b[2] = 0x85; // element 1: 0b0101 = +3; element 17: 0b1000, E2M1's -0, which ggml's table reads as 0
    const y = dec('MXFP4', b);
    expect([y[0], y[16], y[15], y[31], y[1], y[2]]).toEqual([6, -6, -0.5, 0.5, 3, 0]);
    expect(Object.is(y[17], 0)).toBe(true);
    b[0] = 0; // the smallest scale, 2^-127
    expect(dec('MXFP4', b)[0]).toBe(6 * 2 ** -127);
    b[0] = 255; // read as 2^128 (ggml), not NaN: finite in float64
    expect(dec('MXFP4', b)[0]).toBe(6 * 2 ** 128);
  });

  test('Q6_K: low nibbles in ql, two high bits in qh, signed 8-bit sub-block scales, q - 32', () => {
    const b = block('Q6_K');
    setF16(b, 208, f16(1));
    b.fill(1, 192, 208);
    b[192 + 12] = 0xff; // sub-block 12 (elements 192..207): scale -1
    b[0] = 0x5a; // element 0: low 0xa; element 64 (g = 2): low 0x5
    b[128] = 0b10 << 4; // qh[0] bits 4..5: element 64's high bits = 2
    b[64 + 32 + 1] = 0x30; // h = 1, g = 3 (high nibble of ql[64 + 32 + l]), l = 1: element 128 + 96 + 1 = 225
    const y = dec('Q6_K', b);
    expect([y[0], y[64], y[225], y[192]]).toEqual([10 - 32, 0x25 - 32, 3 - 32, 32]);
  });
});
