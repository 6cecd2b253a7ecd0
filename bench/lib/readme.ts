import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/fs/atomic.js';
import { formatValue } from './table.js';
import type { Row } from './types.js';

const BEGIN = '<!-- bench:results -->';
const END = '<!-- /bench:results -->';

interface Report {
  suite: string;
  date: string;
  rows: Row[];
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** One Markdown table of every stored suite result: what the README shows under "Benchmarks". */
export function renderResults(reports: readonly Report[]): string {
  const lines = [
    '| suite | figure | ours | reference | ratio | goal | result |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const report of reports) {
    for (const r of report.rows) {
      const reference = r.reference === null ? '—' : `${formatValue(r.reference, r.unit)}${r.referenceName === null ? '' : ` (${r.referenceName})`}`;
      const result = r.status === 'error' ? `error: ${(r.error ?? '').slice(0, 120)}` : r.status === 'fail' ? '**fail**' : r.status;
      lines.push(
        `| ${cell(report.suite)} | ${cell(r.label)} | ${cell(formatValue(r.ours, r.unit))} | ${cell(reference)} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(3)}×`} | ${cell(r.goal ?? '')} | ${cell(result)} |`,
      );
    }
  }
  const dates = reports.map((r) => `${r.suite} ${r.date.slice(0, 10)}`).join(', ');
  return `${lines.join('\n')}\n\nFrom \`bench/results/*.json\` (${dates}); rewritten by every \`npm run bench\` and by \`npm run bench -- --readme\`.`;
}

/** Rewrites the results block of the README from the stored results of every suite. */
export async function updateReadme(readmePath: string, resultsDir: string, suiteOrder: readonly string[]): Promise<boolean> {
  const names = (await readdir(resultsDir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const reports: Report[] = [];
  for (const name of names) {
    try {
      const r = JSON.parse(await readFile(join(resultsDir, name), 'utf8')) as Report;
      if (typeof r.suite === 'string' && Array.isArray(r.rows)) reports.push(r);
    } catch {
      // A results file that does not parse is left out of the table, not fatal.
    }
  }
  const rank = (s: string): number => (suiteOrder.includes(s) ? suiteOrder.indexOf(s) : suiteOrder.length);
  reports.sort((a, b) => rank(a.suite) - rank(b.suite) || (a.suite < b.suite ? -1 : 1));
  const text = await readFile(readmePath, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) return false;
  const next = `${text.slice(0, start + BEGIN.length)}\n${renderResults(reports)}\n${text.slice(end)}`;
  if (next !== text) await writeFileAtomic(readmePath, next);
  return true;
}
