import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { runLoop } from '../../../src/client/agent.js';
import { registerAgent } from '../../../src/client/register.js';
import { type Lab, LAB_DP, callAdmin, expectAdmin, startLab, until } from '../../../src/site/lab.js';
import type { BenchContext } from '../../lib/types.js';
import { median } from '../hierarchy/common.js';

export const LAB_RUNS = 5;
const POLL_SECONDS = 1;
const SOURCE_BYTES = 100 * 1024;

const statusSchema = z.object({ succeeded: z.number(), failed: z.number() });
const messagesSchema = z.object({ messages: z.array(z.object({ component: z.string(), site: z.string(), text: z.string() })) });

interface LabRun {
  /** Create → SEC's advertisement status shows the client succeeded. */
  atSec: number;
  /** Create → CEN lists SEC's `mp` status message of that success. */
  atCen: number;
  /** Create → SEC accepted the advertisement (the package and its program had arrived at SEC). */
  advertised: number;
}

async function writeSource(dir: string, seed: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Different bytes every run, so no chunk is already at SEC or in the client's cache.
  const block = Buffer.alloc(SOURCE_BYTES);
  for (let j = 0; j < block.length; j += 4) block.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, j);
  await writeFile(join(dir, 'payload.bin'), block);
  await writeFile(join(dir, 'seed.txt'), `${seed}\n`);
  await writeFile(join(dir, 'install.sh'), 'test -s payload.bin\n');
}

/** One run: create at CEN for SEC/dp1, advertise at SEC as soon as SEC knows the package, wait for the client's success at SEC, then at CEN. */
async function oneRun(lab: Lab, work: string, collection: string, i: number): Promise<LabRun> {
  const cen = lab.site('CEN');
  const sec = lab.site('SEC');
  const source = join(work, `src-${i}`);
  await writeSource(source, `clients-lab-${Date.now()}-${i}`);
  const t0 = performance.now();
  const since = new Date(Date.now() - 1000).toISOString();
  const secs = (): number => (performance.now() - t0) / 1000;
  const body = { name: `Clients lab ${i}`, sourcePath: source, version: '1.0', programs: [{ name: 'Install', commandLine: 'sh install.sh', maxRunTimeSeconds: 60 }] };
  const { id } = (await expectAdmin(cen, 'POST', '/api/v1/packages', 201, body)) as { id: string };
  await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: [`SEC/${LAB_DP}`] });
  // Advertisements belong to the client's site: SEC takes one once the package (with its program) has arrived there.
  const ad = await until(
    `SEC accepts an advertisement of ${id}`,
    async () => {
      const r = await callAdmin(sec, 'POST', '/api/v1/advertisements', { packageId: id, program: 'Install', collection });
      return r.status === 201 ? (r.json as { id: string }).id : undefined;
    },
    60_000,
    20,
  );
  const advertised = secs();
  const atSec = await until(
    `SEC shows ${ad} succeeded`,
    async () => {
      const s = statusSchema.parse(await expectAdmin(sec, 'GET', `/api/v1/advertisements/${ad}/status`, 200));
      if (s.failed > 0) throw new Error(`advertisement ${ad} failed at the client`);
      return s.succeeded > 0 ? secs() : undefined;
    },
    60_000,
    20,
  );
  const atCen = await until(
    `CEN lists the success of ${ad}`,
    async () => {
      const r = messagesSchema.parse(await expectAdmin(cen, 'GET', `/api/v1/status-messages?component=mp&package=${id}&since=${encodeURIComponent(since)}`, 200));
      return r.messages.some((m) => m.site === 'SEC' && m.text.includes(`advertisement ${ad}`) && m.text.includes('succeeded')) ? secs() : undefined;
    },
    60_000,
    20,
  );
  return { atSec, atCen, advertised };
}

/**
 * The lab (`sitecast lab`: CEN → PRI → SEC site processes), one client agent
 * registered at SEC's MP polling every second (in this process), in a
 * collection of SEC. Per run, a new package is created at CEN for SEC/dp1 and
 * advertised at SEC as soon as SEC accepts it; the clock runs from the create
 * request until SEC's advertisement status shows the client succeeded, and
 * on until CEN lists the status message of that success.
 */
export async function benchLab(ctx: BenchContext): Promise<void> {
  const dir = await ctx.tempDir('lab');
  const runs: LabRun[] = [];
  let lab: Lab | undefined;
  const stopAgent = new AbortController();
  let agent: Promise<void> | undefined;
  const count = Math.max(LAB_RUNS, ctx.runs);
  const result = await ctx.attempt(async () => {
    lab = await startLab({ dir: join(dir, 'lab'), log: (line) => ctx.log(line) });
    const sec = lab.site('SEC');
    const state = join(dir, 'client');
    const { identity } = await registerAgent(state, sec.url, 'lab-client-1');
    const collection = 'LabClients';
    await expectAdmin(sec, 'POST', '/api/v1/collections', 201, { name: collection, members: [identity.clientId] });
    const errors: string[] = [];
    let lastPass = '';
    agent = runLoop(state, { intervalSeconds: POLL_SECONDS, signal: stopAgent.signal, onError: (err) => errors.push(err instanceof Error ? err.message : String(err)),
      onPass: (p) => (lastPass = p.advertisements.map((a) => `${a.id} ${a.outcome}${a.message === undefined ? '' : ` (${a.message})`}`).join(', ')),
    });
    const work = await ctx.tempDir('lab-src');
    ctx.log(`lab: ${count} runs of create at CEN → advertise at SEC → client at SEC succeeds (poll ${POLL_SECONDS} s)`);
    for (let i = 0; i < count; i++) {
      const r = await oneRun(lab, work, collection, i).catch((err: unknown) => {
        // Say what the agent saw last: a timeout alone does not tell which side stalled.
        throw new Error(`run ${i + 1}: ${err instanceof Error ? err.message : String(err)}; agent's last pass: ${lastPass || 'none'}; agent errors: ${errors.slice(-3).join('; ') || 'none'}`);
      });
      ctx.log(`lab run ${i + 1}: advertised at +${r.advertised.toFixed(2)} s, succeeded at SEC +${r.atSec.toFixed(2)} s, seen at CEN +${r.atCen.toFixed(2)} s`);
      runs.push(r);
    }
    if (errors.length > 0) ctx.log(`agent errors during the runs: ${errors.slice(0, 3).join('; ')}`);
    return median(runs.map((r) => r.atSec));
  });
  stopAgent.abort();
  await agent?.catch(() => undefined);
  const exits = await lab?.close();
  if (exits !== undefined) ctx.log(`lab site servers stopped: ${exits.map((e) => `${e.code} ${e.exit.signal ?? `exit ${String(e.exit.code)}`}`).join(', ')}`);
  const m = (f: (r: LabRun) => number): string => median(runs.map(f)).toFixed(2);
  ctx.record({
    id: 'lab-create-to-success',
    label: `lab CEN → PRI → SEC: package create (100 KiB) at CEN for SEC/${LAB_DP} → advertised at SEC → a client of SEC's MP (1 s poll) succeeded, as SEC's advertisement status shows it; median of ${count}`,
    unit: 's',
    ours: result,
    goal: { on: 'value', op: '<=', target: 5 },
    samples: runs.map((r) => r.atSec),
    note: result.ok
      ? `medians: advertisement accepted at SEC +${m((r) => r.advertised)} s, success at SEC +${m((r) => r.atSec)} s, success listed at CEN (status message) +${m((r) => r.atCen)} s; at CEN per run: ${runs.map((r) => r.atCen.toFixed(2)).join(', ')} s`
      : result.error,
  });
}
