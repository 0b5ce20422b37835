// The native header JSON parser, checked differentially against JSON.parse through real
// safetensors files: (1) metadata strings full of escapes and non-ASCII text must decode to
// exactly what JSON.parse gives; (2) seeded random edits of valid headers must be rejected
// as ERR_HEADER_JSON exactly when JSON.parse rejects them (with the documented exceptions:
// mother also rejects duplicate keys and lone \u surrogates, which JSON.parse accepts).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, MotherError } from '../lib';
import { rng } from './helpers/reference';
import { tmpDir } from './helpers/tmp';

function file(headerText: string, dataBytes = 0): Buffer {
  const h = Buffer.from(headerText, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}

/** A JSON string literal for `s`, with each character written one of several legal ways. */
function encodeString(s: string, rand: () => number): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const r = rand();
    const short: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '/': '\\/' };
    const hex = (u: number) => `\\u${u.toString(16).padStart(4, '0')}`;
    const escaped = cp >= 0x10000 ? hex(0xd800 + ((cp - 0x10000) >> 10)) + hex(0xdc00 + ((cp - 0x10000) & 0x3ff)) : hex(cp);
    if (cp < 0x20 || ch === '"' || ch === '\\') out += r < 0.5 && short[ch] ? short[ch] : r < 0.75 ? escaped : escaped.toUpperCase().replace('\\U', '\\u');
    else if (ch === '/' && r < 0.3) out += '\\/';
    else out += r < 0.3 ? escaped : ch;
  }
  return out + '"';
}

const ALPHABET = [
  'a', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u001f', '\u007f', '\u0080', '\u00e9', '\u07ff', '\u0800',
  '\u20ac', '\ufeff', '\uffff', '\u{10000}', '\u{1f600}', '\u{10ffff}',
];
const KEY_ALPHABET = ALPHABET.filter((c) => c !== '\u0000');

describe('header JSON parser vs JSON.parse', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => {
    tmp = tmpDir('mother-json-');
  });
  afterAll(() => tmp.cleanup());

  test('metadata strings: every escape form decodes exactly (seeded, 300 headers)', async () => {
    const rand = rng(42);
    const f = path.join(tmp.dir, 'meta.safetensors');
    const mismatches: string[] = [];
    for (let k = 0; k < 300; k++) {
      const entries: [string, string][] = [];
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) {
        const pick = (len: number, from: string[]) => Array.from({ length: len }, () => from[Math.floor(rand() * from.length)]).join('');
        // Keys without U+0000: that case has its own test below.
        entries.push([`k${i}${pick(Math.floor(rand() * 4), KEY_ALPHABET)}`, pick(Math.floor(rand() * 12), ALPHABET)]);
      }
      const text = `{"__metadata__":{${entries.map(([key, v]) => `${encodeString(key, rand)}:${encodeString(v, rand)}`).join(',')}}}`;
      const want = (JSON.parse(text) as { __metadata__: Record<string, string> }).__metadata__;
      fs.writeFileSync(f, file(text));
      const got = (await inspectModel(f)).files[0].metadata;
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${text}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  test('metadata keys that are awkward as JS property names arrive intact (NUL inside, __proto__)', async () => {
    const text = String.raw`{"__metadata__":{"a\u0000x":"1","a\u0000y":"2","__proto__":"3","constructor":"4"}}`;
    const f = path.join(tmp.dir, 'keys.safetensors');
    fs.writeFileSync(f, file(text));
    const got = (await inspectModel(f)).files[0].metadata;
    expect(Object.entries(got).sort()).toEqual([
      ['__proto__', '3'],
      ['a\u0000x', '1'],
      ['a\u0000y', '2'],
      ['constructor', '4'],
    ]);
  });

  test('random edits of valid headers: rejected as JSON errors exactly when JSON.parse rejects them (seeded)', async () => {
    const rand = rng(7);
    const int = (n: number) => Math.floor(rand() * n);
    const f = path.join(tmp.dir, 'edit.safetensors');
    const bases = [
      '{"__metadata__":{"format":"pt","n":"\\u00e9\\n"},"a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}',
      '{ "a" : { "dtype" : "U8" , "shape" : [ ] , "data_offsets" : [ 0 , 1 ] } , "b" : {"dtype":"I8","shape":[0],"data_offsets":[1,1]} }',
      '{"x":[true,false,null,-0,1.5e-3,2E+2,{"y":[[],{}]}],"__metadata__":null}',
    ];
    const tokens = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', '\\"', '0', '-', '.', 'e', '+', '1', ' ', '\t', '\n', 'tru', 'true', 'nul', 'null', 'a', '\u00e9', '\u0001', '/*', '\ufeff'];
    const mismatches: string[] = [];
    let jsonErrors = 0;
    let parsed = 0;
    for (let k = 0; k < 1500; k++) {
      let text = bases[int(bases.length)];
      const edits = 1 + int(3);
      for (let e = 0; e < edits; e++) {
        const at = int(text.length + 1);
        const del = int(3);
        const ins = rand() < 0.7 ? tokens[int(tokens.length)] : '';
        text = text.slice(0, at) + ins + text.slice(at + del);
      }
      let jsOk = true;
      try {
        JSON.parse(text);
      } catch {
        jsOk = false;
      }
      fs.writeFileSync(f, file(text, 9));
      let code = 'OK';
      try {
        await inspectModel(f);
      } catch (err) {
        if (!(err instanceof MotherError)) {
          mismatches.push(`${JSON.stringify(text)}: not a MotherError: ${String(err)}`);
          continue;
        }
        code = err.code;
      }
      if (code === 'ERR_HEADER_JSON') jsonErrors++;
      else parsed++;
      const loneSurrogate = /\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]/.test(text);
      if (jsOk && code === 'ERR_HEADER_JSON' && !loneSurrogate) mismatches.push(`${JSON.stringify(text)}: JSON.parse accepts it, mother says ERR_HEADER_JSON`);
      if (!jsOk && code !== 'ERR_HEADER_JSON' && code !== 'ERR_DUPLICATE_KEY') mismatches.push(`${JSON.stringify(text)}: JSON.parse rejects it, mother says ${code}`);
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    // Both sides of the comparison are exercised.
    expect(jsonErrors).toBeGreaterThan(300);
    expect(parsed).toBeGreaterThan(100);
  });
});
