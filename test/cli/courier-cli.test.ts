import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AddressThrottle, createCourierSender } from '../../src/components/sender/index.js';
import { makeRequest, sitePair } from '../components/sender/fixtures.js';
import { runCli } from '../helpers/cli.js';

const run = runCli;

test('courier import drops a good parcel into receive/ and refuses a damaged, cut or misaddressed one, leaving receive/ untouched', async (t) => {
  const p = await sitePair(t);
  const carrier = join(p.dir, 'carrier');
  await mkdir(carrier, { recursive: true });
  const limit = (): { mode: 'rate'; bytesPerSecond: null } => ({ mode: 'rate', bytesPerSecond: null });
  const sender = createCourierSender({ from: 'CEN', keys: p.cen.keys, target: { code: 'PRI', url: null, path: carrier }, throttle: new AddressThrottle(limit), limit });
  const { req, file, data } = await makeRequest(p.cen, 300_000, { id: 'parcel1' });
  await sender.send(req, file, () => undefined, new AbortController().signal);
  const parcel = join(carrier, 'PRI.parcel1.parcel');
  const bytes = await readFile(parcel);
  const receive = p.pri.paths.despoolrReceive;
  const visible = async (): Promise<string[]> => (await readdir(receive)).filter((n) => !n.startsWith('.'));

  const damaged = Buffer.from(bytes);
  damaged[damaged.length - 5000] = (damaged[damaged.length - 5000] ?? 0) ^ 0xff;
  const cases: [string, Buffer, RegExp][] = [
    ['damaged', damaged, /checksum does not match|does not match/],
    ['cut', bytes.subarray(0, bytes.length - 100), /cut short/],
    ['not a parcel', Buffer.from('hello'), /not a Sitecast parcel/],
  ];
  for (const [name, content, why] of cases) {
    const path = join(p.dir, `${name}.parcel`);
    await writeFile(path, content);
    const r = await run(['courier', 'import', '--root', p.pri.root, path, '--json']);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, /SITECAST_E_BAD_PARCEL/);
    assert.match(r.stderr, why);
    assert.deepEqual(await visible(), [], `${name}: nothing in receive/`);
  }
  const elsewhere = await run(['courier', 'import', '--root', p.cen.root, parcel]);
  assert.equal(elsewhere.code, 1);
  assert.match(elsewhere.stderr, /addressed to site PRI, this is CEN/);

  const ok = await run(['courier', 'import', '--root', p.pri.root, parcel, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { id: 'parcel1', from: 'CEN', bytes: data.length });
  assert.ok((await readFile(join(receive, 'parcel1.bundle'))).equals(data));
});
