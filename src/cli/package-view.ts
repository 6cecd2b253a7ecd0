import type { PackageStatusView } from '../components/provider/contract.js';
import { packageIdSchema } from '../db/values.js';
import { checkFlags } from './client.js';
import { table } from './table.js';

/** A package id from the command line; a malformed one is a usage error. */
export function packageId(text: string): string {
  return checkFlags(packageIdSchema, text, 'package id');
}

/** Human form of a package status: one line per DP, extra columns only when one has something to say. */
export function statusTable(s: PackageStatusView): string {
  const failed = s.sourceProblem === undefined ? '' : `source version ${s.sourceVersion} FAILED: ${s.sourceProblem}; fix the source folder, then \`sitecast package update ${s.id}\`\n`;
  const head = `package ${s.id}, source version ${s.sourceVersion}\n${failed}`;
  if (s.dps.length === 0) return `${head}not distributed to any DP yet; use \`sitecast package distribute\`\n`;
  const headers = ['DP', 'STATE', 'VERSION', 'RETRIES', 'NEXT ATTEMPT', 'LAST MESSAGE'];
  const rows = s.dps.map((d) => [
    `${d.site}/${d.dp}`,
    d.state,
    String(d.sourceVersion),
    d.retryCount === undefined ? '' : String(d.retryCount),
    d.nextAttempt ?? '',
    (d.lastMessage ?? '').replace(/\s+/g, ' '),
  ]);
  const keep = headers.map((_, i) => i < 3 || rows.some((r) => r[i] !== ''));
  const pick = <T>(cells: T[]): T[] => cells.filter((_, i) => keep[i]);
  return head + table(pick(headers), rows.map(pick));
}
