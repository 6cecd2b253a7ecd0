import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { callSite } from '../../../src/cli/client.js';
import { ROUTES, packageStatusSchema } from '../../../src/components/provider/contract.js';
import type { BenchContext, Outcome } from '../../lib/types.js';
import type { RunningSite } from './server.js';

/** The part of autocannon's programmatic API used here (it ships no types). */
interface CannonResult {
  requests: { average: number; total: number };
  latency: { p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Cannon = (options: { url: string; connections: number; duration: number; headers?: Record<string, string> }) => Promise<CannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;
const CONNECTIONS = 10;
const DURATION_S = 10;

interface Load {
  perSecond: number;
  p99Ms: number;
  total: number;
}

async function load(url: string, token: string): Promise<Load> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, headers: { authorization: `Bearer ${token}` } });
  const bad = r.errors + r.timeouts + r.non2xx;
  if (bad > 0) throw new Error(`${bad} of ${r.requests.total} requests failed (errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx})`);
  return { perSecond: r.requests.average, p99Ms: r.latency.p99, total: r.requests.total };
}

async function startReference(body: string): Promise<{ url: string; child: ChildProcess }> {
  const script = fileURLToPath(new URL('./ref-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, body], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening at (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`reference server exited ${String(code)}`)));
  });
  child.stdout?.resume();
  return { url, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

const value = <T, U>(o: Outcome<T>, f: (v: T) => U): Outcome<U> => (o.ok ? { ok: true, value: f(o.value) } : o);

/**
 * `GET /api/v1/packages/:id/status` with a bearer token under autocannon
 * (10 connections, 10 s, loopback) against the running site, then against
 * bare Fastify answering the same JSON, in the same run.
 */
export async function benchStatusReads(ctx: BenchContext, site: RunningSite, packageId: string): Promise<void> {
  const path = ROUTES.packageStatus.url.replace(':id', packageId);
  const ours = await ctx.attempt(async () => {
    // The answer must be a real status (the package with its DPs), not an error page.
    const status = await callSite(site.target, { method: 'GET', path }, packageStatusSchema);
    ctx.log(`autocannon ${CONNECTIONS} connections, ${DURATION_S} s: GET ${path} (${status.dps.length} DPs) on the site`);
    return { status, load: await load(`${site.target.url}${path}`, site.target.token) };
  });
  const reference = await ctx.attempt(async () => {
    const body = JSON.stringify(ours.ok ? ours.value.status : { id: packageId, sourceVersion: 1, dps: [] });
    const ref = await startReference(body);
    try {
      ctx.log('autocannon on bare Fastify with the same JSON');
      return await load(`${ref.url}${path}`, site.target.token);
    } finally {
      await stopChild(ref.child);
    }
  });
  const perSecond = value(ours, (o) => o.load.perSecond);
  const note = (o: Outcome<Load>): string => (o.ok ? `${o.value.perSecond.toFixed(0)} req/s, p99 ${o.value.p99Ms} ms, ${o.value.total} requests` : o.error);
  ctx.record({
    id: 'api-status-reads',
    label: `GET /packages/:id/status, bearer token, autocannon ${CONNECTIONS} conn ${DURATION_S} s: time per 2,000 requests (≤ 1 s ⇔ ≥ 2,000 req/s)`,
    unit: 's',
    ours: value(perSecond, (r) => 2000 / r),
    reference: { name: 'bare Fastify, same JSON', value: value(reference, (r) => 2000 / r.perSecond) },
    goal: { on: 'value', op: '<=', target: 1 },
    note: `ours: ${note(value(ours, (o) => o.load))}; reference: ${note(reference)}`,
  });
  ctx.record({
    id: 'api-status-p99',
    label: 'GET /packages/:id/status p99 latency under that load',
    unit: 's',
    ours: value(ours, (o) => o.load.p99Ms / 1000),
    reference: { name: 'bare Fastify, same JSON', value: value(reference, (r) => r.p99Ms / 1000) },
    note: 'context; autocannon latency percentiles, milliseconds resolution',
  });
}
