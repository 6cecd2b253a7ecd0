import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchData } from './data.js';
import { runMeasured, runShell } from './exec.js';
import { dataDir, repoRoot } from './paths.js';
import { buildRow } from './rows.js';
import { attempt } from './outcome.js';
import { medianOf, pairedMedians } from './timing.js';
import type { BenchContext, Row } from './types.js';

export interface ContextOptions {
  runs: number;
  /** Leave the suite's temporary folder in place for inspection. */
  keep: boolean;
}

export interface SuiteSession {
  ctx: BenchContext;
  rows: Row[];
  /** Removes the temporary folder (unless kept); safe to call twice. */
  close(): Promise<void>;
}

export function openSuite(suite: string, options: ContextOptions): SuiteSession {
  const rows: Row[] = [];
  // Scratch lives beside the data, on the same disk, so both sides write to the same device.
  const scratch = join(dataDir, 'tmp', `${suite}-${randomBytes(4).toString('hex')}`);
  let closed = false;

  const ctx: BenchContext = {
    suite,
    repoRoot,
    runs: options.runs,
    data: fetchData,
    async tempDir(name) {
      const dir = join(scratch, name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      return dir;
    },
    run: runMeasured,
    sh: runShell,
    median: (prepare, body) => medianOf(options.runs, { prepare, body }),
    paired: (reference, ours) => pairedMedians(options.runs, reference, ours),
    attempt,
    record(input) {
      const row = buildRow(suite, input);
      rows.push(row);
      const shown = row.status === 'error' ? `error: ${row.error ?? ''}` : row.status;
      process.stderr.write(`[${suite}] ${row.label}: ${shown}\n`);
    },
    log(message) {
      process.stderr.write(`[${suite}] ${message}\n`);
    },
  };

  return {
    ctx,
    rows,
    async close() {
      if (closed || options.keep) return;
      closed = true;
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
