import { join } from 'node:path';
import { callSite } from '../../src/cli/client.js';
import { ROUTES, packageSchema } from '../../src/components/provider/contract.js';
import { checkManifestId, loadManifest, openLibrary } from '../../src/content/library.js';
import { medianOf, middle } from '../lib/timing.js';
import type { BenchContext, Median, Outcome, Suite } from '../lib/types.js';
import { downloadAll, downloadAllBatched } from './clients/download.js';
import { benchLab } from './clients/lab.js';
import { findNginx, startNginx } from './clients/nginx.js';
import { pollAtRate } from './clients/poll.js';
import { advertiseToAll, installedPackage, registerMany } from './clients/setup.js';
import { type RunningSite, addDps, startSiteProcess } from './site/server.js';

const CLIENTS = 1000;
const RATE = 500;
const POLL_SECONDS = 20;
const DOWNLOADERS = 100;
const PACKAGE_BYTES = 50_000_000;
/** As the agent asks (src/client/download.ts defaults). */
const BATCH = 256;
const IN_FLIGHT = 2;

const value = <T, U>(o: Outcome<T>, f: (v: T) => U): Outcome<U> => (o.ok ? { ok: true, value: f(o.value) } : o);

async function benchPolicy(ctx: BenchContext, site: RunningSite, dp: string, dir: string): Promise<void> {
  const result = await ctx.attempt(async () => {
    const pkg = await installedPackage(site.target, dir, dp, 200_000);
    await advertiseToAll(site.target, pkg, 'bench-');
    ctx.log(`registering ${CLIENTS} clients`);
    const clients = await registerMany(site.target.url, CLIENTS, 'bench-');
    // Warm-up: every client once (fills the MP's per-client cache, as steady polling would).
    await pollAtRate(site.target.url, clients, RATE, CLIENTS / RATE);
    ctx.log(`${CLIENTS} clients polling at ${RATE} requests/s for ${POLL_SECONDS} s`);
    const r = await pollAtRate(site.target.url, clients, RATE, POLL_SECONDS);
    if (r.failed > 0) throw new Error(`${r.failed} of ${r.sent} policy requests failed`);
    return r;
  });
  ctx.record({
    id: 'policy-p99',
    label: `GET /mp/v1/policy p99 latency, ${CLIENTS} clients at ${RATE} req/s for ${POLL_SECONDS} s (signed requests, signed answers)`,
    unit: 's',
    ours: value(result, (r) => r.p99 / 1000),
    goal: { on: 'value', op: '<=', target: 0.05 },
    note: result.ok
      ? `${result.value.ok} requests at ${result.value.rate.toFixed(0)}/s; p50 ${result.value.p50.toFixed(1)} ms, p99 ${result.value.p99.toFixed(1)} ms, max ${result.value.max.toFixed(1)} ms; policy ${result.value.policyBytes} bytes`
      : result.error,
  });
}

async function benchDownload(ctx: BenchContext, site: RunningSite, dp: string, dir: string): Promise<void> {
  const prepared = await ctx.attempt(async () => {
    const id = await installedPackage(site.target, dir, dp, PACKAGE_BYTES);
    const pkg = await callSite(site.target, { method: 'GET', path: ROUTES.getPackage.url.replace(':id', id) }, packageSchema);
    const manifestId = pkg.manifestSha256 ?? '';
    const manifest = await loadManifest(await openLibrary(join(site.root, 'library')), checkManifestId(manifestId));
    const hashes = [...new Set(manifest.entries.flatMap((e) => (e.type === 'file' ? e.chunks.map((c) => c.hash) : [])))];
    return { hashes, chunksDir: join(dir, dp.split('/')[1] ?? 'dp1', 'library', 'chunks') };
  });
  if (!prepared.ok) {
    ctx.record({ id: 'dp-download', label: 'DP download', unit: 'MB/s', ours: prepared });
    return;
  }
  const { hashes, chunksDir } = prepared.value;
  const dpName = dp.split('/')[1] ?? 'dp1';
  const nginxBin = await findNginx();
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  const nginxStart = nginxBin === undefined ? ({ ok: false, error: 'nginx not installed (apt-get install nginx-light)' } as const) : await ctx.attempt(() => startNginx(nginxBin, join(dir, 'nginx'), chunksDir));
  if (nginxStart.ok) nginx = nginxStart.value;
  try {
    ctx.log(
      `${DOWNLOADERS} clients × ${hashes.length} chunks (${PACKAGE_BYTES / 1e6} MB) from one DP in batches of ${BATCH}${nginx === undefined ? '' : ', alternating with nginx'}, ${ctx.runs} rounds; then from the DP chunk by chunk`,
    );
    const none = async (): Promise<void> => undefined;
    const ourSide = { prepare: none, body: () => downloadAllBatched(`${site.target.url}/dp/${dpName}/chunks`, hashes, { clients: DOWNLOADERS, batch: BATCH, inFlight: IN_FLIGHT }) };
    const rounds =
      nginx === undefined || !nginxStart.ok
        ? { ours: await ctx.attempt(() => medianOf(ctx.runs, ourSide)), reference: nginxStart as Outcome<never> }
        : await ctx.paired({ prepare: none, body: () => downloadAll((h) => `${nginx.url}/chunks/${h.slice(0, 2)}/${h}`, hashes, DOWNLOADERS) }, ourSide);
    const single = await ctx.attempt(() => downloadAll((h) => `${site.target.url}/dp/${dpName}/chunks/${h}`, hashes, DOWNLOADERS));
    const rate = (r: { bytes: number; seconds: number }): number => r.bytes / 1e6 / r.seconds;
    /** The median of the rounds' throughputs, each measured inside the download (no process or agent start-up). */
    const medianRate = (o: Outcome<Median<{ bytes: number; seconds: number }>>): Outcome<number> => value(o, (m) => middle(m.values.map(rate).sort((a, b) => a - b)));
    const batched = value(rounds.ours, (m) => m.values);
    const reference = value(rounds.reference, (m) => m.values);
    const mbps = (o: Outcome<{ bytes: number; seconds: number }>): Outcome<number> => value(o, rate);
    const nginxSide = { name: 'nginx-light, same chunk files, GET per chunk', value: medianRate(rounds.reference) };
    const describe = (runs: { bytes: number; seconds: number }[]): string => `${((runs[0]?.bytes ?? 0) / 1e9).toFixed(2)} GB per round in ${runs.map((r) => r.seconds.toFixed(1)).join(', ')} s`;
    const refNote = reference.ok ? `; nginx ${describe(reference.value)}` : '';
    ctx.record({
      id: 'dp-download',
      label: `${DOWNLOADERS} clients downloading a ${PACKAGE_BYTES / 1e6} MB package at once from one DP, as the agent asks (POST /dp/<dp>/chunks, ${BATCH} chunks per request, ${IN_FLIGHT} requests in flight per client), vs nginx serving the same ${hashes.length} chunk files (GET /chunks/<xx>/<sha256>, one in flight per client); loopback, aggregate throughput`,
      unit: 'MB/s',
      ours: medianRate(rounds.ours),
      reference: nginxSide,
      goal: { on: 'ratio', op: '>=', target: 0.8 },
      ...(batched.ok ? { samples: batched.value.map(rate) } : {}),
      ...(reference.ok ? { referenceSamples: reference.value.map(rate) } : {}),
      note: batched.ok ? `median of ${batched.value.length} rounds, alternating with nginx; ours ${describe(batched.value)}, ${batched.value[0]?.requests ?? 0} requests a round${refNote}` : batched.error,
    });
    ctx.record({
      id: 'dp-download-per-chunk',
      label: `same, the same request pattern on both sides: GET /dp/<dp>/chunks/<sha256> (DP) vs GET /chunks/<xx>/<sha256> (nginx), one chunk per request, one in flight per client, kept alive`,
      unit: 'MB/s',
      ours: mbps(single),
      reference: nginxSide,
      note: single.ok ? `${(single.value.bytes / 1e9).toFixed(2)} GB in ${single.value.seconds.toFixed(1)} s, ${DOWNLOADERS * hashes.length} requests` : single.error,
    });
  } finally {
    await nginx?.stop();
  }
}

/**
 * Clients against one site: the management point's policy latency under
 * 1,000 polling clients, and a DP's download throughput against nginx;
 * then the lab (CEN → PRI → SEC): package create at CEN → a client at SEC
 * reports success.
 */
export const suite: Suite = {
  name: 'clients',
  description: 'management point policy p99 under 1,000 clients at 500 req/s; 100 clients downloading 50 MB from one DP vs nginx-light; lab create → client at SEC succeeded',
  async run(ctx) {
    const dir = await ctx.tempDir('clients');
    const site = await startSiteProcess(dir, ctx.repoRoot);
    try {
      const [dp = 'BEN/dp1'] = await addDps(site.target, dir, 1);
      await benchPolicy(ctx, site, dp, dir);
      await benchDownload(ctx, site, dp, dir);
    } finally {
      await site.stop();
    }
    await benchLab(ctx);
  },
};
