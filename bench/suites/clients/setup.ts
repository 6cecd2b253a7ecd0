import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callSite, type SiteTarget } from '../../../src/cli/client.js';
import { ROUTES, createdSchema, distributeResultSchema, packageStatusSchema } from '../../../src/components/provider/contract.js';
import { CLIENT_ROUTES, advertisementCreatedSchema, collectionSchema } from '../../../src/components/provider/clients-contract.js';
import { type ClientKeys } from '../../../src/client/state.js';
import { register } from '../../../src/client/mp-client.js';

/** A package of `bytes` of incompressible data plus a tiny script, installed on `dp`; returns its id. */
export async function installedPackage(target: SiteTarget, dir: string, dp: string, bytes: number): Promise<string> {
  const source = join(dir, `src-${bytes}`);
  await mkdir(source, { recursive: true });
  const block = Buffer.alloc(1 << 20);
  const parts: Buffer[] = [];
  for (let i = 0; i < Math.ceil(bytes / block.length); i++) {
    for (let j = 0; j < block.length; j += 4) block.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, j);
    parts.push(Buffer.from(block));
  }
  await writeFile(join(source, 'payload.bin'), Buffer.concat(parts).subarray(0, bytes));
  await writeFile(join(source, 'install.sh'), 'exit 0\n');
  const body = { name: `bench ${bytes}`, sourcePath: source, programs: [{ name: 'Install', commandLine: 'sh install.sh', maxRunTimeSeconds: 600 }] };
  const { id } = await callSite(target, { method: 'POST', path: ROUTES.createPackage.url, body }, createdSchema);
  await callSite(target, { method: 'POST', path: ROUTES.distribute.url.replace(':id', id), body: { dps: [dp] } }, distributeResultSchema);
  const until = Date.now() + 300_000;
  for (;;) {
    const s = await callSite(target, { method: 'GET', path: ROUTES.packageStatus.url.replace(':id', id) }, packageStatusSchema);
    if (s.dps.length > 0 && s.dps.every((d) => d.state === 'installed')) break;
    if (Date.now() > until) throw new Error(`package ${id} was not installed within 300 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Inbox Manager copies the instruction files to the MP right after.
  await new Promise((r) => setTimeout(r, 1000));
  return id;
}

export async function advertiseToAll(target: SiteTarget, packageId: string, namePrefix: string): Promise<string> {
  const col = `bench-${Date.now().toString(36)}`;
  await callSite(target, { method: 'POST', path: CLIENT_ROUTES.createCollection.url, body: { name: col, rules: [`name:${namePrefix}*`] } }, collectionSchema);
  const body = { packageId, program: 'Install', collection: col };
  return (await callSite(target, { method: 'POST', path: CLIENT_ROUTES.advertise.url, body }, advertisementCreatedSchema)).id;
}

export interface SimClient {
  id: string;
  keys: ClientKeys;
}

/** Registers `count` clients (fresh Ed25519 keys) at the MP, 20 at a time. */
export async function registerMany(mp: string, count: number, prefix: string): Promise<SimClient[]> {
  const out: SimClient[] = [];
  for (let i = 0; i < count; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, async (_, j) => {
        const { privateKey, publicKey } = generateKeyPairSync('ed25519');
        const keys = { privateKey, publicKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
        const answer = await register(mp, `${prefix}${i + j}`, keys);
        if (answer.status !== 'registered') throw new Error(`client ${i + j} was not registered: ${answer.status}`);
        return { id: answer.clientId, keys };
      }),
    );
    out.push(...batch);
  }
  return out;
}
