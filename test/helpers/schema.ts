// The subset of JSON Schema that docs/model-graph.schema.json uses, as a small validator (no dependency).
export type Schema = { type?: string | string[]; const?: unknown; enum?: unknown[]; required?: string[]; properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[]; $ref?: string; $defs?: Record<string, Schema> };

let root: Schema = {};

/** The subset of JSON Schema the model-graph schema uses: type, const, enum, required, properties, items, anyOf, $ref to #/$defs. */
export function validate(v: unknown, s: Schema, at = '$'): string[] {
  const errs: string[] = [];
  if (s.$defs) root = s;
  if (s.$ref) {
    const def = root.$defs?.[s.$ref.replace('#/$defs/', '')];
    if (!def) return [`${at}: unknown $ref ${s.$ref}`];
    return validate(v, def, at);
  }
  if (s.anyOf && !s.anyOf.some((alt) => validate(v, alt, at).length === 0)) errs.push(`${at}: matches none of anyOf`);
  const typeOf = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
  if (s.const !== undefined && v !== s.const) errs.push(`${at}: expected ${JSON.stringify(s.const)}`);
  if (s.enum && !s.enum.includes(v)) errs.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
  if (s.type) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.includes(typeOf(v))) errs.push(`${at}: expected ${types.join('|')}, got ${typeOf(v)}`);
  }
  if (s.required && typeOf(v) === 'object') for (const k of s.required) if (!(k in (v as object))) errs.push(`${at}: missing ${k}`);
  if (s.properties && typeOf(v) === 'object')
    for (const [k, sub] of Object.entries(s.properties)) if (k in (v as object)) errs.push(...validate((v as Record<string, unknown>)[k], sub, `${at}.${k}`));
  if (s.items && Array.isArray(v)) v.forEach((x, i) => errs.push(...validate(x, s.items!, `${at}[${i}]`)));
  return errs;
}
