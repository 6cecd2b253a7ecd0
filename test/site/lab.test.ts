import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/sitecast.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('sitecast lab: three site server processes, the sample package installed on every DP, SIGTERM stops them all with exit 0 and removes the folder', { timeout: 150_000 }, async (t) => {
  const child = spawn(process.execPath, [BIN, 'lab'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let pids: number[] = [];
  t.after(() => {
    // Whatever happened above, no process of this test outlives it.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Press Ctrl-C')) resolve();
    });
    void exited.then((code) => reject(new Error(`sitecast lab exited ${String(code)} early:\n${out}${err}`)));
  });

  assert.match(out, /^all installed: 3 DPs in \d+\.\d\d s$/m);
  for (const code of ['CEN', 'PRI', 'SEC']) assert.match(out, new RegExp(`^ {2}\\+\\d+\\.\\d\\d s {2}installed on ${code}/dp1$`, 'm'));
  const sites = [...out.matchAll(/^ {2}([A-Z0-9]{3}) {2}(http:\/\/127\.0\.0\.1:\d+) {2}pid (\d+) {2}token file (\S+) {2}root (\S+)$/gm)];
  assert.deepEqual(sites.map((m) => m[1]), ['CEN', 'PRI', 'SEC']);
  pids = sites.map((m) => Number(m[3]));
  const dir = /Press Ctrl-C to stop; (\S+) is removed on exit/.exec(out)?.[1];
  assert.ok(dir !== undefined, out);
  for (const m of sites) {
    const [, code, url, pid, tokenFile] = m as unknown as [string, string, string, string, string];
    assert.ok(alive(Number(pid)), `site ${code} runs as process ${pid}`);
    assert.ok(existsSync(tokenFile));
    const res = await fetch(`${url}/api/v1/site`, { headers: { authorization: 'Bearer wrong' } });
    await res.arrayBuffer();
    assert.equal(res.status, 401, `${code} answers at ${url} and wants its token`);
  }
  assert.equal(new Set(pids).size, 3);
  assert.ok(!pids.includes(child.pid ?? -1), 'each site is its own process, not the lab process');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, `${out}${err}`);
  assert.match(out, /^stopped: CEN exit 0, PRI exit 0, SEC exit 0$/m);
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is gone`);
  assert.equal(existsSync(dir), false, 'the temporary folder is removed');
});

test('sitecast lab --sites refuses a bad code with a usage error, before anything starts', async () => {
  const child = spawn(process.execPath, [BIN, 'lab', '--sites', 'CEN,pr'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 2);
  assert.match(err, /SITECAST_E_USAGE.*--sites/);
});
