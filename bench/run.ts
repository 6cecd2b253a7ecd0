import { mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/fs/atomic.js';
import { openSuite } from './lib/context.js';
import { repoRoot, resultsDir } from './lib/paths.js';
import { updateReadme } from './lib/readme.js';
import { loadSuites } from './lib/registry.js';
import { renderTable } from './lib/table.js';
import type { Row, Suite } from './lib/types.js';

const USAGE = `usage: npm run bench -- [suite ...] [--runs N] [--keep] [--list] [--readme]
  suite     names of suites to run (default: all)
  --runs N  runs a median is taken over (default 3)
  --keep    keep the scratch folders under bench/.data/tmp
  --list    list the suites and exit
  --readme  only rewrite the README's results table from bench/results/*.json`;

async function runSuite(suite: Suite, runs: number, keep: boolean): Promise<Row[]> {
  const session = openSuite(suite.name, { runs, keep });
  const started = Date.now();
  try {
    await suite.run(session.ctx);
  } catch (err) {
    // A suite should record its own failures; this catches the ones it did not.
    session.ctx.record({
      id: 'suite',
      label: 'suite run',
      unit: 's',
      ours: { ok: false, error: err instanceof Error ? err.message : String(err) },
    });
  } finally {
    await session.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const report = {
    suite: suite.name,
    description: suite.description,
    date: new Date(started).toISOString(),
    seconds,
    runs,
    host: { node: process.version, cpus: cpus().length, platform: process.platform },
    rows: session.rows,
  };
  await mkdir(resultsDir, { recursive: true });
  await writeFileAtomic(join(resultsDir, `${suite.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`[${suite.name}] done in ${seconds.toFixed(0)} s\n`);
  return session.rows;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      readme: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const runs = Number.parseInt(values.runs, 10);
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write(`--runs must be a positive integer\n${USAGE}\n`);
    return 2;
  }
  const all = await loadSuites(fileURLToPath(new URL('./suites/', import.meta.url)));
  const readme = async (): Promise<void> => {
    // In the order the product was built: content engine, one site, the hierarchy, clients, scale.
    const ok = await updateReadme(join(repoRoot, 'README.md'), resultsDir, ['content', 'site', 'hierarchy', 'clients', 'scale', ...all.map((s) => s.name)]);
    process.stderr.write(ok ? 'README.md: results table rewritten\n' : 'README.md has no <!-- bench:results --> block; left as it is\n');
  };
  if (values.readme) {
    await readme();
    return 0;
  }
  if (values.list) {
    for (const s of all) process.stdout.write(`${s.name.padEnd(12)} ${s.description}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !all.some((s) => s.name === p));
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite: ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const chosen = positionals.length === 0 ? all : all.filter((s) => positionals.includes(s.name));
  const rows: Row[] = [];
  for (const suite of chosen) rows.push(...(await runSuite(suite, runs, values.keep)));
  process.stdout.write(`${renderTable(rows)}\n`);
  await readme();
  return rows.some((r) => r.status === 'fail' || r.status === 'error') ? 1 : 0;
}

process.exitCode = await main();
