import type { Row, Unit } from './types.js';

export function formatValue(value: number | null, unit: Unit): string {
  if (value === null) return '—';
  switch (unit) {
    case 'bytes':
      return value >= 1e6 ? `${(value / 1e6).toFixed(2)} MB` : `${(value / 1e3).toFixed(1)} kB`;
    case 'MB/s':
      return `${value.toFixed(1)} MB/s`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'ms':
      return `${value.toFixed(1)} ms`;
    case 'MiB':
      return `${value.toFixed(1)} MiB`;
  }
}

/** Errors are cut short in the table; the JSON results keep them whole. */
const ERROR_WIDTH = 160;

function resultText(row: Row): string {
  if (row.status === 'error') {
    const text = `error: ${row.error ?? 'unknown'}`;
    return text.length > ERROR_WIDTH ? `${text.slice(0, ERROR_WIDTH)}…` : text;
  }
  return row.status;
}

/** A plain-text table: one line per row, errors spelled out in the last column. */
export function renderTable(rows: Row[]): string {
  const header = ['suite', 'figure', 'ours', 'reference', 'ref. tool', 'ratio', 'goal', 'result'];
  const body = rows.map((r) => [
    r.suite,
    r.label,
    formatValue(r.ours, r.unit),
    formatValue(r.reference, r.unit),
    r.referenceName ?? '',
    r.ratio === null ? '—' : `${r.ratio.toFixed(3)}×`,
    r.goal ?? '',
    resultText(r),
  ]);
  const all = [header, ...body];
  // The last column (result, possibly a long error) is not padded.
  const widths = header.map((_, i) => Math.max(...all.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? 6 : w)).join('  ');
  return [line(header), rule, ...body.map(line)].join('\n');
}
