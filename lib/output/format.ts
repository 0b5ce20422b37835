// After the pipeline (output): numbers and plain-text tables for the terminal.
import { escapeControl } from './escape';

/** Formats a statistic compactly: fixed for moderate magnitudes, exponent otherwise. */
export function num(v: number | null, digits = 4): string {
  if (v === null) return '-';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e9) return String(v);
  if (a >= 1e-3 && a < 1e5) return v.toPrecision(digits);
  return v.toExponential(digits - 1);
}

/** A distance, confidence or kurtosis in the graph formats: 4 significant digits, '-' when absent or not finite. */
export function graphNum(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '-' : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toPrecision(4) : x.toExponential(3);
}

/** A plain-text table; every cell is one line, its control characters shown escaped. Widths in
 *  one pass over the rows (no spread of a column into a call: 150k rows are fine). */
export function table(rawHeaders: string[], rawRows: string[][], rightAlign: boolean[] = []): string {
  const headers = rawHeaders.map(escapeControl);
  const rows = rawRows.map((r) => r.map(escapeControl));
  const widths = headers.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) if (r[i].length > widths[i]) widths[i] = r[i].length;
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const lines = [line(headers), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of rows) lines.push(line(r));
  return lines.join('\n');
}
