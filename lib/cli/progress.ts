// A one-line progress bar on stderr when it is a TTY (bytes, rate, ETA); silent otherwise.

export interface ProgressBar {
  update(done: number, total: number, detail?: string): void;
  finish(): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u += 1;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, enabled = stream.isTTY === true): ProgressBar {
  if (!enabled) return { update() {}, finish() {} };
  const start = Date.now();
  let drawn = false;
  return {
    update(done, total, detail) {
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const width = 24;
      const fill = Math.round(frac * width);
      const secs = (Date.now() - start) / 1000;
      const rate = secs > 0 ? done / secs : 0;
      const eta = rate > 0 && done < total ? `ETA ${Math.ceil((total - done) / rate)}s` : '';
      const line = `${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ${eta}${detail ? ' ' + detail : ''}`;
      stream.write(`\r${line.slice(0, (stream.columns || 100) - 1)}\x1b[K`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
