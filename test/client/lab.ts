import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { registerAgent } from '../../src/client/register.js';
import { addDp, createPackage, setTargets, type Program } from '../../src/db/index.js';
import { type SiteHandle, startSite } from '../../src/site/server.js';
import { randomBytesFrom } from '../helpers/fixtures.js';
import { statusWhen } from '../helpers/distribution.js';
import { eventually, newSite, type TestSite } from '../helpers/site.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

export interface Lab {
  site: TestSite;
  h: SiteHandle;
  token: string;
  admin<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** A package whose source holds `install.sh` and a multi-chunk payload, installed on the DPs, its instruction files at the MP. */
  makePackage(label: string, programs: Program[], dps: { name: string; url?: string }[]): Promise<string>;
  advertise(packageId: string, program: string, collection: string): Promise<string>;
  registerClient(name: string): Promise<string>;
}

/** A running site (CEN) on loopback with an admin token, and helpers to set up what a client sees. */
export async function clientLab(t: Ctx): Promise<Lab> {
  const site = await newSite(t);
  const h = await startSite(site.root, { distmgr: { graceMs: 100 } });
  site.defer(() => h.close());
  const token = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const admin = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const knownDps = new Set<string>();
  return {
    site,
    h,
    token,
    admin,
    async makePackage(label, programs, dps) {
      const source = join(site.dir, `src-${label}`);
      await mkdir(source, { recursive: true });
      await writeFile(join(source, 'install.sh'), 'cat payload.bin | wc -c > "$1"\n');
      await writeFile(join(source, 'payload.bin'), randomBytesFrom(`payload-${label}`, 1_500_000));
      const pkg = await createPackage(h.ctx.db, { name: `Package ${label}`, sourcePath: source, programs });
      for (const dp of dps) {
        if (knownDps.has(dp.name)) continue;
        knownDps.add(dp.name);
        await addDp(h.ctx.db, { site: 'CEN', name: dp.name, path: join(site.dir, dp.name.toLowerCase()), url: dp.url ?? null });
      }
      await setTargets(h.ctx.db, pkg.id, dps.map((d) => ({ site: 'CEN', dp: d.name })));
      h.ctx.wake('dbmon');
      await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed', 90_000);
      await eventually(`${pkg.id}.NAL listing ${dps.length} DPs at the MP`, async () => {
        try {
          await access(join(site.root, 'mp', 'pkginfo', `${pkg.id}.PKG`));
          const nal = JSON.parse(await readFile(join(site.root, 'mp', 'pkginfo', `${pkg.id}.NAL`), 'utf8')) as { locations: unknown[] };
          return nal.locations.length === dps.length ? true : undefined;
        } catch {
          return undefined;
        }
      }, 30_000);
      return pkg.id;
    },
    async advertise(packageId, program, collection) {
      const r = await admin<{ id: string }>('POST', '/api/v1/advertisements', { packageId, program, collection });
      if (r.status !== 201) throw new Error(`advertise answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body.id;
    },
    async registerClient(name) {
      const dir = join(site.dir, `client-${name}`);
      await registerAgent(dir, h.url, name);
      return dir;
    },
  };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
