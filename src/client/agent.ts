import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { extractManifest } from '../content/extract.js';
import { openLibrary, saveManifest } from '../content/library.js';
import { manifestId, parseManifest } from '../content/manifest.js';
import { SitecastError, isSitecastError } from '../errors.js';
import type { Policy, PolicyAdvertisement, StatusReport } from '../formats/client-protocol.js';
import { downloadChunks } from './download.js';
import { fetchManifest, fetchPolicy, register, sendReport } from './mp-client.js';
import { runProgram } from './program.js';
import { checkSiteKey } from './register.js';
import { type ClientState, type Runs, loadRuns, loadState, saveIdentity, saveRuns } from './state.js';

export type AdvertisementOutcome = 'succeeded' | 'failed' | 'already-run' | 'not-ready' | 'download-failed';

export interface AdvertisementResult {
  id: string;
  packageId: string;
  program: string;
  outcome: AdvertisementOutcome;
  exitCode: number | null;
  message?: string;
}

export interface PassResult {
  client: string;
  site: string;
  /** False while the site has not approved this client. */
  approved: boolean;
  advertisements: AdvertisementResult[];
  badDps: string[];
}

/** One line per event in `<state>/logs/agent.log`. */
async function logLine(state: ClientState, text: string): Promise<void> {
  await mkdir(state.paths.logs, { recursive: true, mode: 0o700 });
  await appendFile(join(state.paths.logs, 'agent.log'), `${new Date().toISOString()} ${text}\n`, { mode: 0o600 });
}

/** Sends queued reports in order; what cannot be sent now stays queued in runs.json for the next pass. */
async function flushReports(state: ClientState, runs: Runs): Promise<void> {
  while (runs.pending.length > 0) {
    const report = runs.pending[0] as StatusReport;
    try {
      await sendReport(state, report);
    } catch (err) {
      // A report the MP refuses for its content (an advertisement since deleted) is dropped; anything else waits.
      if (!isSitecastError(err, 'SITECAST_E_NOT_FOUND') && !isSitecastError(err, 'SITECAST_E_HTTP')) throw err;
    }
    runs.pending.shift();
    await saveRuns(state.paths, runs);
  }
}

async function report(state: ClientState, runs: Runs, r: StatusReport): Promise<void> {
  runs.pending.push(r);
  await saveRuns(state.paths, runs);
  await flushReports(state, runs).catch((err: unknown) => logLine(state, `report queued: ${err instanceof Error ? err.message : String(err)}`));
}

function due(ad: PolicyAdvertisement, now: string): boolean {
  return ad.available <= now && (ad.expires === null || ad.expires > now);
}

async function handle(state: ClientState, runs: Runs, policy: Policy, ad: PolicyAdvertisement, badDps: string[]): Promise<AdvertisementResult> {
  const base = { id: ad.id, packageId: ad.packageId, program: ad.program };
  const done = runs.runs[ad.id];
  if (done !== undefined && done.rerun >= ad.rerun && done.state !== 'running') return { ...base, outcome: 'already-run', exitCode: done.exitCode };
  const adReport = (stateName: 'received' | 'running' | 'succeeded' | 'failed', exitCode: number | null, message: string | null): Promise<void> =>
    report(state, runs, { type: 'advertisement', advertisement: ad.id, packageId: ad.packageId, rerun: ad.rerun, state: stateName, exitCode, message });

  if (done !== undefined && done.state === 'running' && done.rerun >= ad.rerun) {
    // The agent stopped while the program ran: it ran once; it is not started again.
    runs.runs[ad.id] = { ...done, state: 'failed' };
    await adReport('failed', null, 'the client agent stopped while the program was running');
    return { ...base, outcome: 'failed', exitCode: null, message: 'interrupted' };
  }
  const files = policy.packages[ad.packageId];
  const program = files?.pkg.programs.find((p) => p.name === ad.program);
  if (files === undefined || program === undefined) return { ...base, outcome: 'not-ready', exitCode: null, message: 'instruction files not at the MP yet' };

  await adReport('received', null, null);
  const cacheDir = state.paths.cache;
  const workDir = join(state.paths.work, ad.id);
  try {
    const lib = await openLibrary(cacheDir, { create: true });
    const id = files.pkg.manifest;
    const bytes = await fetchManifest(state, id);
    if (manifestId(bytes) !== id) throw new SitecastError('SITECAST_E_BAD_MANIFEST', `the manifest from the MP does not match its id ${id}`);
    const manifest = parseManifest(bytes, id);
    const got = await downloadChunks({
      cacheDir,
      manifest,
      locations: files.nal.locations,
      site: state.identity.site,
      onBadDp: (loc, problem) => {
        badDps.push(`${loc.site}/${loc.dp}`);
        void logLine(state, `DP ${loc.site}/${loc.dp} failed for ${ad.packageId}: ${problem}`);
        runs.pending.push({ type: 'dp', packageId: ad.packageId, site: loc.site, dp: loc.dp, problem });
      },
    });
    await saveManifest(lib, manifest);
    await rm(workDir, { recursive: true, force: true });
    await mkdir(state.paths.work, { recursive: true, mode: 0o700 });
    await extractManifest(cacheDir, id, workDir);
    await logLine(state, `${ad.id}: ${ad.packageId} ready (${got.fetched} chunks fetched, ${got.cached} cached, from ${got.used.join(', ') || 'cache'})`);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await saveRuns(state.paths, runs);
    await flushReports(state, runs).catch(() => undefined);
    await logLine(state, `${ad.id}: content of ${ad.packageId} not ready: ${message}`);
    return { ...base, outcome: 'download-failed', exitCode: null, message };
  }

  runs.runs[ad.id] = { rerun: ad.rerun, state: 'running', exitCode: null, time: new Date().toISOString() };
  await adReport('running', null, null);
  const run = await runProgram({
    commandLine: program.commandLine,
    cwd: workDir,
    maxRunTimeSeconds: program.maxRunTimeSeconds,
    logFile: join(state.paths.logs, `${ad.id}.${ad.rerun}.out`),
  }).catch((err: unknown) => ({ exitCode: null, signal: null, timedOut: false, seconds: 0, error: err instanceof Error ? err.message : String(err) }));
  const ok = run.exitCode === 0 && !run.timedOut;
  const message = run.timedOut
    ? `killed after its maximum run time of ${program.maxRunTimeSeconds} s`
    : 'error' in run
      ? `could not start: ${run.error}`
      : run.exitCode === null
        ? `ended by signal ${run.signal ?? '?'}`
        : null;
  runs.runs[ad.id] = { rerun: ad.rerun, state: ok ? 'succeeded' : 'failed', exitCode: run.exitCode, time: new Date().toISOString() };
  await logLine(state, `${ad.id}: program ${ad.program} of ${ad.packageId} ${ok ? 'succeeded' : 'failed'} (exit code ${run.exitCode ?? 'none'})${message === null ? '' : `: ${message}`}`);
  await adReport(ok ? 'succeeded' : 'failed', run.exitCode, message);
  return { ...base, outcome: ok ? 'succeeded' : 'failed', exitCode: run.exitCode, ...(message === null ? {} : { message }) };
}

/** Why a moved-to site's key is refused (not among the pinned fingerprints), or undefined when it may be used. */
function untrustedKey(answer: { site: string; siteKey: string }, url: string, trusted: readonly string[] | undefined): string | undefined {
  try {
    checkSiteKey(answer, url, trusted);
    return undefined;
  } catch (err) {
    if (isSitecastError(err, 'SITECAST_E_UNTRUSTED_KEY')) return err.message;
    throw err;
  }
}

/**
 * One pass of the agent: deliver queued reports, fetch and check the policy,
 * follow a move to another site, then for each advertisement that is due and
 * has not run (at this "run again" count): download, materialise, run, report.
 * Advertisements with a mandatory time go first, earliest first.
 */
export async function runPass(stateDir: string): Promise<PassResult> {
  let state = await loadState(stateDir);
  const runs = await loadRuns(state.paths);
  await flushReports(state, runs).catch(() => undefined);
  let policy: Policy;
  try {
    policy = await fetchPolicy(state);
  } catch (err) {
    if (isSitecastError(err, 'SITECAST_E_FORBIDDEN')) {
      return { client: state.identity.clientId, site: state.identity.site, approved: false, advertisements: [], badDps: [] };
    }
    throw err;
  }
  if (policy.moved !== null && policy.moved.mp !== null) {
    await logLine(state, `this client is now in a boundary of site ${policy.moved.site}: registering at ${policy.moved.mp}`);
    const answer = await register(policy.moved.mp, state.identity.name, state.keys);
    const untrusted = answer.status === 'registered' ? untrustedKey(answer, policy.moved.mp, state.identity.trustedSiteKeys) : undefined;
    if (untrusted !== undefined) await logLine(state, `not moving to site ${policy.moved.site}: ${untrusted}`);
    else if (answer.status === 'registered') {
      await saveIdentity(stateDir, {
        ...state.identity,
        clientId: answer.clientId,
        site: answer.site,
        mp: policy.moved.mp,
        siteKey: answer.siteKey,
        pollSeconds: answer.pollSeconds,
        registeredAt: new Date().toISOString(),
      });
      state = await loadState(stateDir);
      policy = await fetchPolicy(state);
    }
  }
  const now = new Date().toISOString();
  const ads = policy.advertisements
    .filter((a) => due(a, now))
    .sort((a, b) => (a.mandatory ?? '\uffff').localeCompare(b.mandatory ?? '\uffff') || a.id.localeCompare(b.id));
  const results: AdvertisementResult[] = [];
  const badDps: string[] = [];
  for (const ad of ads) results.push(await handle(state, runs, policy, ad, badDps));
  await flushReports(state, runs).catch(() => undefined);
  return { client: state.identity.clientId, site: state.identity.site, approved: true, advertisements: results, badDps };
}

export interface LoopOptions {
  /** Seconds between passes (default: what the MP said at registration). */
  intervalSeconds?: number;
  signal?: AbortSignal;
  onPass?: (result: PassResult) => void;
  onError?: (err: unknown) => void;
}

/** Runs passes until the signal aborts, waiting the interval ± 20 % jitter between them (so clients spread out). */
export async function runLoop(stateDir: string, options: LoopOptions = {}): Promise<void> {
  const first = await loadState(stateDir);
  const interval = options.intervalSeconds ?? first.identity.pollSeconds;
  while (options.signal?.aborted !== true) {
    try {
      options.onPass?.(await runPass(stateDir));
    } catch (err) {
      if (isSitecastError(err, 'SITECAST_E_CLIENT_STATE')) throw err;
      options.onError?.(err);
    }
    const wait = interval * 1000 * (0.8 + Math.random() * 0.4);
    // timers/promises removes its abort listener when the wait ends: one per pass would pile up on a long-running agent.
    await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(() => undefined);
  }
}
