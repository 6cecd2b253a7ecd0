import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROUTES, packageStatusSchema, type PackageStatusView } from '../components/provider/contract.js';
import { type SiteFlags, callSite, resolveTarget, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { WAIT_ERROR_EXIT, printJson, reportError, usage, type Io } from './output.js';
import { packageId, statusTable } from './package-view.js';
import { progressBar } from './progress.js';

interface WaitOpts extends SiteFlags {
  timeout: string;
  interval: string;
  json?: boolean;
}

export type WaitOutcome = 'done' | 'failed' | 'waiting';

/** Done when every targeted DP holds the current source version; failed as soon as one DP failed. */
export function outcome(s: PackageStatusView): { outcome: WaitOutcome; installed: number } {
  const installed = s.dps.filter((d) => d.state === 'installed' && d.sourceVersion >= s.sourceVersion).length;
  if (s.sourceProblem !== undefined || s.dps.some((d) => d.state === 'failed')) return { outcome: 'failed', installed };
  return { outcome: installed === s.dps.length ? 'done' : 'waiting', installed };
}

function seconds(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > 7 * 24 * 3600) throw usage(`${flag} ${JSON.stringify(text)} is not a number of seconds`);
  return n;
}

const EXIT: Record<WaitOutcome, number> = { done: 0, failed: 1, waiting: 2 };


/** `sitecast package wait`: exit 0 when installed everywhere, 1 when a DP (or the source) failed, 2 on timeout, 3 when it could not tell. */
export function registerPackageWait(pkg: Command, io: Io, run: Run): void {
  withSiteFlags(pkg.command('wait').description('wait until every targeted DP holds the current version (exit 0), it failed (1), the time is up (2), or an error (3)'))
    .argument('<id>', 'package id')
    .option('--timeout <s>', 'give up after this many seconds', '600')
    .option('--interval <s>', 'seconds between two looks', '0.5')
    .option('--json', 'print the last status as one JSON object')
    .action((id: string, opts: WaitOpts) =>
      run(async () => {
        try {
          return await waitFor(id, opts, io);
        } catch (err) {
          reportError(io, err, Boolean(opts.json));
          return WAIT_ERROR_EXIT;
        }
      }, Boolean(opts.json)),
    );
}

async function waitFor(id: string, opts: WaitOpts, io: Io): Promise<number> {
  const pkgId = packageId(id);
  const timeoutMs = seconds(opts.timeout, '--timeout', 0) * 1000;
  const intervalMs = seconds(opts.interval, '--interval', 0.05) * 1000;
  const target = await resolveTarget(opts, io.env ?? {});
  const path = ROUTES.packageStatus.url.replace(':id', pkgId);
  const deadline = Date.now() + timeoutMs;
  const bar = progressBar(io, `${pkgId} DPs installed`, !opts.json);
  let status: PackageStatusView;
  let result: ReturnType<typeof outcome>;
  try {
    for (;;) {
      status = await callSite(target, { method: 'GET', path }, packageStatusSchema);
      result = outcome(status);
      bar.onProgress?.(result.installed, status.dps.length);
      if (result.outcome !== 'waiting' || Date.now() >= deadline) break;
      await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
    }
  } finally {
    bar.stop();
  }
  if (opts.json) printJson(io, status);
  else io.stdout(statusTable(status));
  if (result.outcome === 'failed' && status.dps.every((d) => d.state !== 'failed')) {
    io.stderr(`package ${pkgId} failed: its source folder could not be used (${status.sourceProblem ?? ''})\n`);
  } else if (result.outcome === 'failed') {
    const failed = status.dps.filter((d) => d.state === 'failed').map((d) => `${d.site}/${d.dp}`);
    io.stderr(`package ${pkgId} failed on ${failed.join(', ')}; see \`sitecast status messages --package ${pkgId}\`\n`);
  } else if (result.outcome === 'done' && status.dps.length === 0) {
    io.stderr(`nothing to wait for: package ${pkgId} is not distributed to any DP\n`);
  } else if (result.outcome === 'waiting') {
    io.stderr(`timed out after ${opts.timeout} s: ${result.installed} of ${status.dps.length} DPs hold source version ${status.sourceVersion}\n`);
  }
  return EXIT[result.outcome];
}
