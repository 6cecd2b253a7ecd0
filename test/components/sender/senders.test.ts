import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Sender,
  type SenderDeps,
  SENDERS,
  SenderComponent,
  importParcel,
  AddressThrottle,
} from '../../../src/components/sender/index.js';
import { setAddress } from '../../../src/db/index.js';
import { writeSendRequest, type SenderKind } from '../../../src/formats/srq.js';
import { PARCEL_SUFFIX } from '../../../src/formats/parcel.js';
import { eventually } from '../../helpers/site.js';
import { type Pair, makeRequest, sitePair } from './fixtures.js';

/**
 * One suite, run against every sender: whatever the kind, the file must
 * arrive whole in the target's receive folder, an interrupted transfer must
 * resume, and the sender component must keep the request's status in its
 * .SRS while it works.
 */
interface Kind {
  kind: SenderKind;
  /** Where the address points (lan: the target's receive folder; courier: a carrier folder). */
  path(p: Pair): string | null;
  /** Makes what was sent reach the target's receive folder (courier: import the parcel there). */
  deliver(p: Pair, id: string): Promise<void>;
}

const KINDS: Kind[] = [
  { kind: 'http', path: () => null, deliver: async () => undefined },
  { kind: 'lan', path: (p) => p.pri.paths.despoolrReceive, deliver: async () => undefined },
  {
    kind: 'courier',
    path: (p) => join(p.dir, 'carrier'),
    deliver: async (p, id) => {
      const parcels = (await readdir(join(p.dir, 'carrier'))).filter((n) => n.endsWith(PARCEL_SUFFIX) && n.includes(id));
      assert.equal(parcels.length, 1, `one parcel for ${id}`);
      await importParcel(p.pri.paths, 'PRI', join(p.dir, 'carrier', parcels[0] as string));
    },
  },
];

function deps(p: Pair, k: Kind, partBytes?: number): SenderDeps {
  const unlimited = (): { mode: 'rate'; bytesPerSecond: null } => ({ mode: 'rate', bytesPerSecond: null });
  return {
    from: 'CEN',
    keys: p.cen.keys,
    target: { code: 'PRI', url: p.priUrl, path: k.path(p) },
    throttle: new AddressThrottle(unlimited),
    limit: unlimited,
    ...(partBytes === undefined ? {} : { partBytes }),
  };
}

async function received(p: Pair, id: string): Promise<Buffer> {
  return readFile(join(p.pri.paths.despoolrReceive, `${id}.bundle`));
}

for (const k of KINDS) {
  test(`${k.kind} sender: delivers byte-exact, large and empty files`, async (t) => {
    const p = await sitePair(t);
    if (k.kind === 'courier') await mkdir(join(p.dir, 'carrier'), { recursive: true });
    const sender: Sender = SENDERS[k.kind](deps(p, k, 256 * 1024));
    for (const size of [3 * 1024 * 1024 + 17, 0, 1]) {
      const { req, file, data } = await makeRequest(p.cen, size);
      const reports: number[] = [];
      await sender.send(req, file, (pr) => reports.push(pr.sent), new AbortController().signal);
      await k.deliver(p, req.id);
      assert.ok((await received(p, req.id)).equals(data), `${size} bytes arrive byte-exact`);
      if (size > 0) assert.equal(reports.at(-1), size);
    }
    // Nothing half-written is visible in the receive folder.
    const names = (await readdir(p.pri.paths.despoolrReceive)).filter((n) => !n.startsWith('.'));
    assert.ok(names.every((n) => n.endsWith('.bundle')), names.join(','));
  });

  test(`${k.kind} sender: an interrupted transfer resumes where it stopped`, async (t) => {
    const p = await sitePair(t);
    if (k.kind === 'courier') await mkdir(join(p.dir, 'carrier'), { recursive: true });
    const d = deps(p, k, 128 * 1024);
    const { req, file, data } = await makeRequest(p.cen, 4 * 1024 * 1024);
    const stop = new AbortController();
    let wire1 = 0;
    await assert.rejects(
      SENDERS[k.kind](d).send(
        req,
        file,
        (pr) => {
          wire1 += pr.wireBytes;
          if (pr.sent >= 1.5 * 1024 * 1024) stop.abort(new Error('cut'));
        },
        stop.signal,
      ),
    );
    assert.ok(!(await readdir(p.pri.paths.despoolrReceive)).includes(`${req.id}.bundle`), 'nothing delivered after the cut');
    let firstSent: number | undefined;
    let wire2 = 0;
    await SENDERS[k.kind](d).send(
      req,
      file,
      (pr) => {
        if (pr.sent > 0) firstSent ??= pr.sent;
        wire2 += pr.wireBytes;
      },
      new AbortController().signal,
    );
    await k.deliver(p, req.id);
    assert.ok((await received(p, req.id)).equals(data));
    assert.ok((firstSent ?? 0) >= 1024 * 1024, `resumed from ${firstSent} bytes, not from the start`);
    assert.ok(wire2 < data.length - 1024 * 1024, `the second attempt sent ${wire2} bytes`);
    assert.ok(wire1 + wire2 < data.length + 512 * 1024, `in all ${wire1 + wire2} bytes for ${data.length}`);
  });

  test(`${k.kind} sender: the component renames .SRQ to .SRS, keeps progress in it, then deletes it and the tosend file`, async (t) => {
    const p = await sitePair(t);
    const path = k.path(p);
    if (k.kind === 'courier') await mkdir(join(p.dir, 'carrier'), { recursive: true });
    await setAddress(p.cen.db, 'PRI', { sender: k.kind, ...(path === null ? {} : { path }), rates: [{ from: 0, to: 24, kbps: 1024 }] });
    const component = new SenderComponent(p.cen, {
      pollMs: 50,
      statusIntervalMs: 100,
      resolveTarget: async (code, address) => ({ code, url: p.priUrl, path: address.path }),
      partBytes: 256 * 1024,
    });
    await component.start();
    p.defer(() => component.close());
    const { req, file, data } = await makeRequest(p.cen, 2 * 1024 * 1024);
    await writeSendRequest(p.cen.paths, { ...req, sender: k.kind });
    const outbox = join(p.cen.paths.scheduleOutboxes, k.kind);
    const seen = await eventually('a .SRS showing bytes sent', async () => {
      const text = await readFile(join(outbox, `${req.id}.SRS`), 'utf8').catch(() => undefined);
      if (text === undefined) return undefined;
      const s = JSON.parse(text) as { status: { state: string; bytesSent: number; bytesTotal: number; attempts: number } };
      return s.status.state === 'sending' && s.status.bytesSent > 0 && s.status.bytesSent < data.length ? s.status : undefined;
    });
    assert.equal(seen.bytesTotal, data.length);
    assert.equal(seen.attempts, 1);
    assert.ok(!(await readdir(outbox)).includes(`${req.id}.SRQ`));
    await eventually('the request done', async () => ((await readdir(outbox)).some((n) => n.startsWith(req.id)) ? undefined : true));
    await assert.rejects(readFile(file), { code: 'ENOENT' });
    await k.deliver(p, req.id);
    assert.ok((await received(p, req.id)).equals(data));
  });
}
