import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { sitePaths } from '../../src/site/layout.js';
import { startThrowAwayServer } from '../../test/helpers/pg-server.js';
import { failure } from '../lib/outcome.js';
import type { BenchContext, Outcome, Suite } from '../lib/types.js';
import { SHAPE, type FillInput, type FillResult, fillPostgres, fillSqlite } from './scale/generate.js';
import { publicKeys } from './scale/keys.js';
import { type BurstFigure, type PolicyFigure, type StatusFigure, type SummaryFigure, burstToWakeUps, policyLatency, statusLatency, summaryLatency } from './scale/measure.js';
import { initSite, startScaleSite } from './scale/site.js';

const STATUS_REQUESTS = 200;
const SUMMARY_RUNS = 5;
const POLICY_RATE = 1000;
const POLICY_SECONDS = 15;
const BURST = 1000;
const BURST_IN_FLIGHT = 32;

type Db = 'sqlite' | 'postgres';

interface Figures {
  fill: Outcome<FillResult>;
  status: Outcome<StatusFigure>;
  summary: Outcome<SummaryFigure>;
  policy: Outcome<PolicyFigure>;
  burst: Outcome<BurstFigure>;
}

/**
 * A production-like PostgreSQL on the same machine: durable (fsync and
 * synchronous commit on, as SQLite's synchronous=FULL), shared buffers
 * sized for the data, and checkpoints spaced out for the bulk load.
 */
const PG_SETTINGS = { shared_buffers: '512MB', max_wal_size: '4GB', work_mem: '16MB' };

function failedAll(error: Outcome<never>): Figures {
  return { fill: error, status: error, summary: error, policy: error, burst: error };
}

/** One database: init a site on it, fill it, start the server, take the four figures, stop. */
async function measure(ctx: BenchContext, db: Db, dir: string, keys: readonly string[], database: string | undefined): Promise<Figures> {
  const root = join(dir, 'site');
  const source = join(dir, 'source');
  await mkdir(source, { recursive: true });
  const token = await initSite(root, ctx.repoRoot, database);
  const input: FillInput = { source, dpRoot: join(dir, 'dps'), publicKeys: keys };
  ctx.log(`${db}: generating ${SHAPE.packages} packages, ${SHAPE.dps} DPs, ${SHAPE.packages * SHAPE.dps} status rows, ${SHAPE.clients} clients`);
  const fill = await ctx.attempt(() => (database === undefined ? fillSqlite(sitePaths(root).database, input) : fillPostgres(database, input)));
  if (!fill.ok) return failedAll(fill);
  ctx.log(`${db}: generated in ${fill.value.seconds.toFixed(1)} s; starting the site server`);
  const started = await ctx.attempt(() => startScaleSite(root, token));
  if (!started.ok) return { ...failedAll(started), fill };
  const site = started.value;
  try {
    ctx.log(`${db}: status of ${STATUS_REQUESTS} packages`);
    const status = await ctx.attempt(() => statusLatency(site.target, STATUS_REQUESTS));
    ctx.log(`${db}: hierarchy summary ×${SUMMARY_RUNS}`);
    const summary = await ctx.attempt(() => summaryLatency(site.target, SUMMARY_RUNS));
    ctx.log(`${db}: policy at ${POLICY_RATE}/s for ${POLICY_SECONDS} s`);
    const policy = await ctx.attempt(() => policyLatency(site.target, POLICY_RATE, POLICY_SECONDS));
    ctx.log(`${db}: burst of ${BURST} package updates`);
    const burst = await ctx.attempt(() => burstToWakeUps(site.target, sitePaths(root).distmgr, BURST, BURST_IN_FLIGHT));
    return { fill, status, summary, policy, burst };
  } finally {
    await site.stop();
  }
}

async function measurePostgres(ctx: BenchContext, dir: string, keys: readonly string[]): Promise<Figures> {
  let server: Awaited<ReturnType<typeof startThrowAwayServer>>;
  try {
    server = await startThrowAwayServer({ durable: true, settings: PG_SETTINGS });
  } catch (err) {
    return failedAll(failure(err));
  }
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE DATABASE sitecast_scale');
    await admin.end();
    const url = new URL(server.url);
    url.pathname = '/sitecast_scale';
    return await measure(ctx, 'postgres', dir, keys, url.toString());
  } catch (err) {
    return failedAll(failure(err));
  } finally {
    server.stop();
  }
}

const ms = <T>(o: Outcome<T>, f: (v: T) => number): Outcome<number> => (o.ok ? { ok: true, value: f(o.value) } : o);
const say = <T>(o: Outcome<T>, f: (v: T) => string): string => (o.ok ? f(o.value) : o.error);

function record(ctx: BenchContext, all: Record<Db, Figures>): void {
  const dbs: Db[] = ['sqlite', 'postgres'];
  const name = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
  for (const db of dbs) {
    const f = all[db].fill;
    ctx.record({
      id: `scale-generate-${db}`,
      label: `${name[db]}: generating the site (${SHAPE.packages} packages, ${SHAPE.dps} DPs, ${SHAPE.packages * SHAPE.dps} status rows, ${SHAPE.clients} clients), one transaction`,
      unit: 's',
      ours: ms(f, (v) => v.seconds),
      note: say(f, (v) => `${v.statusRows} package–DP status rows present`),
    });
  }
  for (const db of dbs) {
    const s = all[db].status;
    ctx.record({
      id: `scale-status-p95-${db}`,
      label: `${name[db]}: GET /packages/:id/status (${SHAPE.dps} DPs each), ${STATUS_REQUESTS} random packages one after another, p95`,
      unit: 'ms',
      ours: ms(s, (v) => v.p95),
      goal: { on: 'value', op: '<=', target: 50 },
      note: say(s, (v) => `p50 ${v.p50.toFixed(1)} ms, max ${v.max.toFixed(1)} ms over ${v.requests} requests`),
    });
  }
  for (const db of dbs) {
    const s = all[db].summary;
    ctx.record({
      id: `scale-summary-${db}`,
      label: `${name[db]}: GET /package-status (state counts of all ${SHAPE.packages} packages over ${SHAPE.packages * SHAPE.dps} rows), median of ${SUMMARY_RUNS}`,
      unit: 'ms',
      ours: ms(s, (v) => v.median),
      goal: { on: 'value', op: '<=', target: 500 },
      samples: s.ok ? s.value.samples : [],
      note: say(s, (v) => `samples ${v.samples.map((x) => x.toFixed(0)).join(', ')} ms; ${(v.bytes / 1e3).toFixed(0)} kB of JSON`),
    });
  }
  for (const db of dbs) {
    const p = all[db].policy;
    ctx.record({
      id: `scale-policy-p99-${db}`,
      label: `${name[db]}: GET /mp/v1/policy at ${POLICY_RATE} req/s for ${POLICY_SECONDS} s, each from a different one of ${SHAPE.clients} registered clients (signed), p99`,
      unit: 'ms',
      ours: ms(p, (v) => v.poll.p99),
      goal: { on: 'value', op: '<=', target: 50 },
      note: say(
        p,
        (v) =>
          `${v.poll.ok} requests at ${v.poll.rate.toFixed(0)}/s; p50 ${v.poll.p50.toFixed(1)} ms, max ${v.poll.max.toFixed(1)} ms (due ${v.poll.maxAt.toFixed(1)} s into the run); the first answer after the advertisement (the MP loads all ${SHAPE.clients} clients) took ${v.firstMs.toFixed(0)} ms; 3 s of warm-up at the same rate before the window`,
      ),
    });
  }
  for (const db of dbs) {
    const b = all[db].burst;
    ctx.record({
      id: `scale-burst-${db}`,
      label: `${name[db]}: ${BURST} POST /packages/:id/update (${BURST_IN_FLIGHT} in flight) → all ${BURST} <PKGID>.PKN in distmgr.box (database monitor running, Distribution Manager not)`,
      unit: 's',
      ours: ms(b, (v) => v.seconds),
      goal: { on: 'value', op: '<=', target: 5 },
      note: say(b, (v) => `every update answered after ${v.answeredSeconds.toFixed(2)} s`),
    });
  }
}

/**
 * Issue 7: a site as large as the biggest real ones, on SQLite and on
 * PostgreSQL in the same run, through the real site server (admin API,
 * management point, database monitor).
 */
export const suite: Suite = {
  name: 'scale',
  description: '10,000 packages × 250 DPs (2.5 M status rows), 100,000 clients, on SQLite and PostgreSQL: package status p95, hierarchy summary, MP policy p99 at 1,000 req/s, 1,000 updates → wake-up files',
  async run(ctx) {
    ctx.log(`deriving ${SHAPE.clients} client keys`);
    const keys = publicKeys(SHAPE.clients);
    const sqlite = await measure(ctx, 'sqlite', await ctx.tempDir('sqlite'), keys, undefined).catch((err: unknown) => failedAll(failure(err)));
    const postgres = await measurePostgres(ctx, await ctx.tempDir('postgres'), keys);
    record(ctx, { sqlite, postgres });
  },
};
