import { readdir } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SiteTarget } from '../../../src/cli/client.js';
import { ROUTES } from '../../../src/components/provider/contract.js';
import { pknName } from '../../../src/formats/pkn.js';
import { type PollResult, pollAtRate } from '../clients/poll.js';
import { advertiseToAll } from '../clients/setup.js';
import { SHAPE, packageId } from './generate.js';
import { CLIENT_PREFIX, draw, prng, simClient } from './keys.js';

/** The four figures of issue 7, each against a running site holding the generated data. */

interface Answer {
  ms: number;
  status: number;
  body: string;
}

function call(agent: Agent, target: SiteTarget, method: 'GET' | 'POST', path: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${target.token}` };
    if (method === 'POST') Object.assign(headers, { 'content-type': 'application/json', 'content-length': '2' });
    const req = request(`${target.url}${path}`, { method, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

function mustBeOk(a: Answer, what: string): Answer {
  if (a.status !== 200) throw new Error(`${what} answered ${a.status}: ${a.body.slice(0, 200)}`);
  return a;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export interface StatusFigure {
  p95: number;
  p50: number;
  max: number;
  requests: number;
}

/** GET /packages/:id/status for `count` random packages, one at a time, each answer checked to list every DP. */
export async function statusLatency(target: SiteTarget, count: number): Promise<StatusFigure> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const ids = draw(count + 10, SHAPE.packages, prng(7)).map(packageId);
    const latencies: number[] = [];
    for (const [n, id] of ids.entries()) {
      const a = mustBeOk(await call(agent, target, 'GET', ROUTES.packageStatus.url.replace(':id', id)), `status of ${id}`);
      const dps = (JSON.parse(a.body) as { dps: unknown[] }).dps.length;
      if (dps !== SHAPE.dps) throw new Error(`status of ${id} lists ${dps} DPs, not ${SHAPE.dps}`);
      // The first ten warm the connection and the server's code paths.
      if (n >= 10) latencies.push(a.ms);
    }
    return { p95: percentile(latencies, 95), p50: percentile(latencies, 50), max: Math.max(...latencies), requests: latencies.length };
  } finally {
    agent.destroy();
  }
}

export interface SummaryFigure {
  median: number;
  samples: number[];
  bytes: number;
}

/** GET /package-status (state counts for every package), `runs` times one after another. */
export async function summaryLatency(target: SiteTarget, runs: number): Promise<SummaryFigure> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const samples: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const a = mustBeOk(await call(agent, target, 'GET', ROUTES.packageSummary.url), 'the package status summary');
      const packages = (JSON.parse(a.body) as { packages: { installed: number; pending: number; retrying: number; failed: number }[] }).packages;
      const rows = packages.reduce((n, p) => n + p.installed + p.pending + p.retrying + p.failed, 0);
      if (packages.length !== SHAPE.packages || rows !== SHAPE.packages * SHAPE.dps) {
        throw new Error(`the summary counts ${packages.length} packages and ${rows} DP statuses`);
      }
      samples.push(a.ms);
      bytes = a.body.length;
    }
    return { median: percentile(samples, 50), samples, bytes };
  } finally {
    agent.destroy();
  }
}

const WARM_UP_SECONDS = 3;

export interface PolicyFigure {
  /** The first policy answer after the advertisement: the MP loads every client's key. */
  firstMs: number;
  poll: PollResult;
  clients: number;
}

/**
 * One advertisement to a collection holding every generated client
 * (name:scale-*), then signed GET /mp/v1/policy at `rate` per second for
 * `seconds` (after 3 s of warm-up), each request from a different client
 * drawn from all of them.
 */
export async function policyLatency(target: SiteTarget, rate: number, seconds: number): Promise<PolicyFigure> {
  await advertiseToAll(target, packageId(1), CLIENT_PREFIX);
  const warmUp = rate * WARM_UP_SECONDS;
  const drawn = draw(1 + warmUp + rate * seconds, SHAPE.clients, prng(11)).map(simClient);
  const first = await pollAtRate(target.url, drawn.slice(0, 1), 1, 1);
  if (first.failed > 0) throw new Error('the first policy request failed');
  // As in the clients suite: a short warm-up at the same rate (other clients), so the window measures steady polling.
  await pollAtRate(target.url, drawn.slice(1, 1 + warmUp), rate, WARM_UP_SECONDS);
  const measured = drawn.slice(1 + warmUp);
  const poll = await pollAtRate(target.url, measured, rate, seconds);
  if (poll.failed > 0) throw new Error(`${poll.failed} of ${poll.sent} policy requests failed`);
  return { firstMs: first.max, poll, clients: measured.length };
}

export interface BurstFigure {
  /** From the first update sent to the last wake-up file seen. */
  seconds: number;
  /** From the first update sent to the last update answered. */
  answeredSeconds: number;
  updates: number;
}

/**
 * `count` POST /packages/:id/update at once (`inFlight` requests at a time,
 * as many administrators' consoles or a script would send them), while the
 * inbox of Distribution Manager (not running) is listed every 5 ms until
 * every `<PKGID>.PKN` is there.
 */
export async function burstToWakeUps(target: SiteTarget, distmgrBox: string, count: number, inFlight: number): Promise<BurstFigure> {
  const ids = draw(count, SHAPE.packages, prng(13)).map(packageId);
  const wanted = new Set(ids.map(pknName));
  const agent = new Agent({ keepAlive: true, maxSockets: inFlight });
  const started = performance.now();
  let answered = Number.NaN;
  try {
    let next = 0;
    const sender = async (): Promise<void> => {
      while (next < ids.length) {
        const id = ids[next++] as string;
        mustBeOk(await call(agent, target, 'POST', ROUTES.updatePackage.url.replace(':id', id)), `update of ${id}`);
      }
    };
    const sending = Promise.all(Array.from({ length: inFlight }, sender)).then(() => {
      answered = performance.now() - started;
    });
    let failure: unknown;
    sending.catch((err: unknown) => (failure = err));
    const deadline = started + 60_000;
    for (;;) {
      if (failure !== undefined) throw failure;
      const present = (await readdir(distmgrBox)).filter((n) => wanted.has(n)).length;
      if (present === wanted.size) break;
      if (performance.now() > deadline) throw new Error(`${present} of ${wanted.size} wake-up files after 60 s`);
      await sleep(5);
    }
    const seconds = (performance.now() - started) / 1000;
    await sending;
    return { seconds, answeredSeconds: answered / 1000, updates: ids.length };
  } finally {
    agent.destroy();
  }
}
