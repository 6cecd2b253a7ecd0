import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ioError } from '../../errors.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import { listFolder } from '../../fs/list.js';

/**
 * What Distribution Manager has done for a package, kept beside the site
 * database in `<root>/state/distmgr/<PKGID>.json`. The database records the
 * manifest of a package but not which source version it was built from; this
 * file does, so a repeated wake-up for an unchanged package costs a few
 * checks and no ingest. Losing it only costs one ingest (which finds every
 * chunk already stored).
 */
const stateSchema = z.strictObject({
  format: z.literal(1),
  packageId: z.string(),
  /** Source version ingested; the manifest below is that version's content, fixed once taken. */
  sourceVersion: z.number().int().min(1),
  manifest: z.string().regex(/^[0-9a-f]{64}$/),
  /** smspkg/<PKGID>.pkg holds this manifest. */
  packed: z.boolean(),
  /** SHA-256 of the last instruction files dropped into pkginfo.box, or null. */
  instructions: z.string().nullable(),
  /**
   * The version this one replaced: the site library keeps it one version
   * longer, because a child site may hold it without having said so yet (the
   * parent plans its next delta against it), or, at a child, the parent may
   * still plan a delta against it (it has not heard of the new one yet).
   */
  previous: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable()
    .optional(),
});

/** The `previous` of a state that follows `known` with `manifest`. */
export function previousOf(known: PackageState | undefined, manifest: string): string | null {
  if (known === undefined) return null;
  return known.manifest === manifest ? (known.previous ?? null) : known.manifest;
}
export type PackageState = z.infer<typeof stateSchema>;

function statePath(dir: string, packageId: string): string {
  return join(dir, `${packageId}.json`);
}

/** The recorded state, or undefined when there is none or it does not parse (then the work is simply redone). */
export async function readState(dir: string, packageId: string): Promise<PackageState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(dir, packageId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`cannot read the distribution state of ${packageId}`, err);
  }
  try {
    const state = stateSchema.parse(JSON.parse(text));
    return state.packageId === packageId ? state : undefined;
  } catch {
    return undefined;
  }
}

export async function writeState(dir: string, state: PackageState): Promise<void> {
  await writeFileAtomic(statePath(dir, state.packageId), `${JSON.stringify(state)}\n`);
}

/** Every recorded state (those that do not parse are left out, as readState leaves them). */
export async function listStates(dir: string): Promise<PackageState[]> {
  const states: PackageState[] = [];
  for (const name of await listFolder(dir)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const state = await readState(dir, name.slice(0, -'.json'.length));
    if (state !== undefined) states.push(state);
  }
  return states;
}
