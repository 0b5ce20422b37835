// After the pipeline (output): the one escaping of names for every text output. Model ids,
// paths, tensor names and error messages come from the file system and from the files
// themselves; printed raw, an ESC sequence clears the screen or sets the terminal title, a
// newline breaks the tree or a table, a bidirectional override reorders what is shown. Every
// text output (tree, tables, messages on stderr, DOT, Mermaid and Newick labels, HTML) passes
// each name through `escapeControl` before its own format's quoting; JSON needs nothing more
// (JSON.stringify writes control characters as \u00XX).

/** C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
 *  (bidi embeddings, overrides and isolates, the line and paragraph separators, the BOM). */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `s` with every control or reordering character written as a visible escape: \n, \r, \t,
 *  \xHH (other C0, DEL, C1: ESC is \x1b), \uHHHH (the Unicode format characters). A string
 *  without them is returned unchanged. */
export function escapeControl(s: string): string {
  return String(s).replace(UNSAFE, (c) => {
    if (NAMED[c]) return NAMED[c];
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** HTML text and attribute values: the control characters made visible, then &, <, >, " and '. */
export function escapeHtml(s: string): string {
  return escapeControl(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** The characters JSON.stringify leaves raw that a terminal still acts on: DEL, C1 and the
 *  Unicode format characters above (C0 controls JSON escapes itself). */
// eslint-disable-next-line no-control-regex
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]/g;

/** JSON text with those characters as \uXXXX escapes: the same document, safe to print. */
export function safeJson(text: string): string {
  return text.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
