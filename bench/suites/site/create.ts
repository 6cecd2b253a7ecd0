import { join } from 'node:path';
import { z } from 'zod';
import { forEachBounded } from '../../../src/content/concurrency.js';
import { shq } from '../../lib/exec.js';
import { map } from '../../lib/outcome.js';
import { sitecastBin } from '../../lib/paths.js';
import { pairedMedians } from '../../lib/timing.js';
import type { BenchContext, Measured } from '../../lib/types.js';
import { createAndDistribute, waitAllInstalled } from './api.js';
import type { RunningSite } from './server.js';
import { writeSourceTree } from './trees.js';

/** Each run is a new package; the median is over this many. */
export const CREATE_RUNS = 20;
const ONE = { files: 100, bytes: 10 * 1024 * 1024 };
const MANY = { count: 200, files: 10, bytes: 100 * 1024 };

const created = z.object({ id: z.string() });

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return ((s[Math.floor(n / 2)] ?? Number.NaN) + (s[Math.floor((n - 1) / 2)] ?? Number.NaN)) / 2;
}

const ms = (s: number): string => `${(s * 1000).toFixed(0)} ms`;

/** `cp -r` of one source to every DP folder: what putting the files there costs without Sitecast. */
function copyToDps(ctx: BenchContext, source: string, dests: string[]): Promise<Measured> {
  return ctx.sh(dests.map((d) => `cp -r ${shq(source)} ${shq(d)}`).join(' && '));
}

/**
 * `package create` → `package distribute` → `package wait` through the CLI
 * (three processes), against the running site; each run a new source tree.
 * The same flow through the API from this process is recorded beside it, so
 * the CLI's own start-up shows apart from the site's work.
 */
export async function benchCreateOne(ctx: BenchContext, site: RunningSite, dps: string[]): Promise<string | undefined> {
  const work = await ctx.tempDir('create-one');
  const cli = async (args: string[]): Promise<Measured> => ctx.run(process.execPath, [sitecastBin, ...args, '--root', site.root], { cwd: ctx.repoRoot });
  let run = 0;
  let refRun = 0;
  let source = '';
  let refSource = '';
  const steps = { create: [] as number[], distribute: [] as number[], wait: [] as number[] };
  let lastId: string | undefined;
  ctx.log(`package create of ${ONE.files} files, ${ONE.bytes / 1e6} MB, to installed on ${dps.length} DPs through the CLI: ${CREATE_RUNS} runs`);
  const { reference, ours } = await pairedMedians(
    CREATE_RUNS,
    {
      prepare: async () => {
        refRun += 1;
        refSource = join(work, `ref-src-${refRun}`);
        await writeSourceTree(refSource, `ref-${refRun}`, ONE);
      },
      body: () => copyToDps(ctx, refSource, dps.map((_, i) => join(work, `ref-dp${i + 1}-${refRun}`))),
    },
    {
      prepare: async () => {
        run += 1;
        source = join(work, `src-${run}`);
        await writeSourceTree(source, `cli-${run}`, ONE);
      },
      body: async () => {
        const c = await cli(['package', 'create', '--name', `bench ${run}`, '--source', source, '--json']);
        const { id } = created.parse(JSON.parse(c.stdout));
        const d = await cli(['package', 'distribute', id, ...dps.flatMap((dp) => ['--dp', dp]), '--json']);
        const w = await cli(['package', 'wait', id, '--interval', '0.05', '--timeout', '60', '--json']);
        steps.create.push(c.seconds);
        steps.distribute.push(d.seconds);
        steps.wait.push(w.seconds);
        lastId = id;
      },
    },
  );
  const breakdown = `median per command: create ${ms(median(steps.create))}, distribute ${ms(median(steps.distribute))}, wait ${ms(median(steps.wait))}`;
  ctx.record({
    id: 'create-10mb-cli',
    label: `package create 10 MB/100 files → installed on 2 DPs (CLI ×3 vs site start process), median of ${CREATE_RUNS}`,
    unit: 's',
    ours: map(ours, (m) => m.seconds),
    reference: { name: 'cp -r to 2 DPs', value: map(reference, (m) => m.seconds) },
    ...(ours.ok ? { samples: ours.value.samples } : {}),
    ...(reference.ok ? { referenceSamples: reference.value.samples } : {}),
    note: `context: each run a new package; create, distribute and wait are each one \`node bin/sitecast.js\` process, so three Node.js start-ups are included; ${breakdown}`,
  });

  // What each of those three processes pays before it sends a request.
  // `package --help` loads what `package create` loads (its command group), then prints instead of calling the site.
  const startup = await ctx.attempt(() => ctx.median(async () => undefined, () => ctx.run(process.execPath, [sitecastBin, 'package', '--help'], { cwd: ctx.repoRoot })));
  ctx.record({
    id: 'cli-startup',
    label: `CLI start-up: node bin/sitecast.js package --help, median of ${ctx.runs}`,
    unit: 's',
    ours: map(startup, (m) => m.seconds),
    ...(startup.ok ? { samples: startup.value.samples } : {}),
    note: 'context: a package command loads this much before its own work',
  });

  // The same flow without the CLI processes: what the site itself takes.
  let apiRun = 0;
  const api = await ctx.attempt(() =>
    pairedMedians(
      CREATE_RUNS,
      { prepare: async () => undefined, body: async () => undefined },
      {
        prepare: async () => {
          apiRun += 1;
          source = join(work, `api-src-${apiRun}`);
          await writeSourceTree(source, `api-${apiRun}`, ONE);
        },
        body: async () => {
          const id = await createAndDistribute(site.target, `bench api ${apiRun}`, source, dps);
          await waitAllInstalled(site.target, [id], { intervalMs: 10, timeoutMs: 60_000 });
        },
      },
    ),
  );
  const apiOurs = api.ok ? api.value.ours : api;
  ctx.record({
    id: 'create-10mb-api',
    label: `package create 10 MB/100 files → installed on 2 DPs through the admin API (the site's own time), median of ${CREATE_RUNS}`,
    unit: 's',
    ours: map(apiOurs, (m) => m.seconds),
    reference: { name: 'cp -r to 2 DPs', value: map(reference, (m) => m.seconds) },
    goal: { on: 'value', op: '<=', target: 0.5 },
    ...(apiOurs.ok ? { samples: apiOurs.value.samples } : {}),
    note: 'create + distribute requests, then status polled every 10 ms; the goal row: what the site server takes, without the start-up of CLI processes',
  });
  return lastId;
}

/** 200 small packages created at once through the API (8 requests in flight), until every one is installed on both DPs. */
export async function benchCreateMany(ctx: BenchContext, site: RunningSite, dps: string[]): Promise<void> {
  const work = await ctx.tempDir('create-many');
  const sources = join(work, 'src');
  ctx.log(`writing ${MANY.count} package sources of ${MANY.files} files, ${MANY.bytes / 1024} KiB each`);
  for (let i = 0; i < MANY.count; i++) await writeSourceTree(join(sources, `p${i}`), `many-${i}`, MANY);
  await ctx.sh(`cat ${shq(sources)}/*/*/* > /dev/null`);
  const refDir = join(work, 'ref');
  const reference = await ctx.attempt(async () => {
    await ctx.sh(`mkdir -p ${shq(refDir)} && sync`);
    return (await copyToDps(ctx, sources, dps.map((_, i) => join(refDir, `dp${i + 1}`)))).seconds;
  });
  ctx.log(`creating ${MANY.count} packages at once`);
  const steps = { requests: 0 };
  const ours = await ctx.attempt(async () => {
    await ctx.sh('sync');
    const started = process.hrtime.bigint();
    const ids: string[] = [];
    await forEachBounded(
      Array.from({ length: MANY.count }, (_, i) => i),
      8,
      async (i) => {
        ids.push(await createAndDistribute(site.target, `bench many ${i}`, join(sources, `p${i}`), dps));
      },
    );
    steps.requests = Number(process.hrtime.bigint() - started) / 1e9;
    ids.sort();
    await waitAllInstalled(site.target, ids, { intervalMs: 50, timeoutMs: 300_000 });
    return Number(process.hrtime.bigint() - started) / 1e9;
  });
  ctx.record({
    id: 'create-200',
    label: `${MANY.count} packages (${MANY.files} files, 100 KiB each) created at once → all installed on 2 DPs (API), one run`,
    unit: 's',
    ours,
    reference: { name: 'cp -r of all 200 to 2 DPs', value: reference },
    goal: { on: 'value', op: '<=', target: 20 },
    note: `create + distribute requests for all ${MANY.count}, 8 in flight, took ${ms(steps.requests)}; then each status polled in creation order every 50 ms, one request at a time`,
  });
}
