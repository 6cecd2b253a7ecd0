import { randomBytes, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { addSite } from '../../../src/db/index.js';
import { receivePlugin } from '../../../src/components/sender/index.js';
import { type SendRequest, sendRequestSchema } from '../../../src/formats/srq.js';
import type { SiteContext } from '../../../src/site/context.js';
import { newSite, openContext } from '../../helpers/site.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

export interface Pair {
  /** The sending site (CEN). */
  cen: SiteContext;
  /** The receiving site (PRI), its receive endpoint listening on loopback. */
  pri: SiteContext;
  priUrl: string;
  priApp: FastifyInstance;
  dir: string;
  /** Runs at the end of the test before the folders are removed (close components here). */
  defer(fn: () => Promise<unknown>): void;
}

/** Two sites that know each other's keys, the receiver's endpoint on a free loopback port. */
export async function sitePair(t: Ctx): Promise<Pair> {
  const a = await newSite(t, 'CEN');
  const b = await newSite(t, 'PRI');
  const cen = await openContext(a);
  const pri = await openContext(b);
  await addSite(cen.db, { code: 'PRI', name: 'Primary', parentCode: 'CEN', publicKey: pri.keys.publicKeyPem });
  await addSite(pri.db, { code: 'CEN', name: 'Central', publicKey: cen.keys.publicKeyPem });
  const priApp = Fastify({ logger: false, forceCloseConnections: true });
  await priApp.register(receivePlugin, { ctx: pri });
  const priUrl = await priApp.listen({ host: '127.0.0.1', port: 0 });
  b.defer(() => priApp.close());
  return { cen, pri, priUrl, priApp, dir: a.dir, defer: (fn) => a.defer(fn) };
}

let counter = 0;
let packages = 0;

/** A tosend file of `bytes` random bytes at the sender and its request. */
export async function makeRequest(
  cen: SiteContext,
  bytes: number,
  over: Partial<SendRequest> = {},
): Promise<{ req: SendRequest; file: string; data: Buffer }> {
  const data = randomBytes(bytes);
  const id = over.id ?? `req-${process.pid}-${++counter}`;
  const name = `${id}.bundle`;
  await mkdir(cen.paths.scheduleToSend, { recursive: true });
  const file = join(cen.paths.scheduleToSend, name);
  await writeFile(file, data);
  const req = sendRequestSchema.parse({
    format: 1,
    id,
    to: 'PRI',
    priority: 'medium',
    created: new Date().toISOString(),
    file: name,
    bytes,
    sha256: createHash('sha256').update(data).digest('hex'),
    kind: 'package',
    // Requests about one package go one at a time: unrelated requests are about packages of their own.
    package: `CEN${(++packages).toString(16).toUpperCase().padStart(5, '0')}`,
    ...over,
  });
  return { req, file, data };
}
