import { randomBytes } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeasured } from './exec.js';
import { dataDir } from './paths.js';

const MARKER = '.complete';

/** `@scope/name@1.2.3` → `scope-name-1.2.3`, the name npm gives the tarball. */
export function dataName(spec: string): string {
  const at = spec.lastIndexOf('@');
  if (at <= 0) throw new Error(`data spec needs an exact version: ${spec}`);
  const name = spec.slice(0, at).replace(/^@/, '').replace('/', '-');
  return `${name}-${spec.slice(at + 1)}`;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function fetchInto(spec: string, target: string): Promise<void> {
  const downloads = join(dataDir, 'downloads');
  await mkdir(downloads, { recursive: true });
  const tgz = join(downloads, `${dataName(spec)}.tgz`);
  if (!(await exists(tgz))) {
    // npm pack writes the registry's tarball unchanged, with its integrity checked.
    await runMeasured('npm', ['pack', '--silent', '--pack-destination', downloads, spec]);
    if (!(await exists(tgz))) throw new Error(`npm pack ${spec} did not produce ${tgz}`);
  }
  const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(partial, { recursive: true });
  try {
    await runMeasured('tar', ['-xzf', tgz, '-C', partial, '--no-same-owner']);
    await writeFile(join(partial, MARKER), `${spec}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(partial, target);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

const pending = new Map<string, Promise<string>>();

/**
 * Returns the unpacked `package/` folder of an npm package version, fetching
 * it with `npm pack` into bench/.data on first use. A folder counts as cached
 * only once its marker is written, so an interrupted fetch is redone.
 */
export function fetchData(spec: string): Promise<string> {
  const known = pending.get(spec);
  if (known !== undefined) return known;
  const work = (async () => {
    const target = join(dataDir, dataName(spec));
    if (!(await exists(join(target, MARKER)))) await fetchInto(spec, target);
    return join(target, 'package');
  })();
  pending.set(spec, work);
  return work;
}
