import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, symlink, writeFile, chmod, readdir, lstat, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary folder per test, removed afterwards. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, label = 'sitecast'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${label}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode): incompressible, reproducible. */
export function randomBytesFrom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let filled = 0;
  for (let i = 0; filled < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    filled += block.copy(out, filled, 0, Math.min(32, size - filled));
  }
  return out;
}

/** Compressible text-like bytes. */
export function textBytes(seed: string, size: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'site', 'package', 'chunk', 'manifest', seed];
  const parts: string[] = [];
  let length = 0;
  let x = 1;
  while (length < size) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const w = words[x % words.length] as string;
    parts.push(w);
    length += w.length + 1;
  }
  return Buffer.from(parts.join(' ')).subarray(0, size);
}

/**
 * A small package tree with what extraction must reproduce: nested and empty
 * folders, modes, an empty file, a multi-chunk file, a >4 MiB file (the
 * streaming path) and in-tree links.
 */
export async function makeTree(root: string, seed = 'tree'): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'lib/deep/er'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  await writeFile(join(root, 'README.txt'), textBytes(seed, 5000));
  await writeFile(join(root, 'empty.txt'), '');
  await writeFile(join(root, 'bin/tool'), randomBytesFrom(`${seed}-tool`, 300_000));
  await chmod(join(root, 'bin/tool'), 0o755);
  await writeFile(join(root, 'lib/big.bin'), Buffer.concat([randomBytesFrom(`${seed}-big`, 3_000_000), textBytes(seed, 2_500_000)]));
  await writeFile(join(root, 'lib/deep/er/data.json'), JSON.stringify({ seed, list: Array.from({ length: 2000 }, (_, i) => i) }));
  await chmod(join(root, 'lib/deep/er/data.json'), 0o600);
  await symlink('../README.txt', join(root, 'lib/readme-link'));
  await symlink('deep/er', join(root, 'lib/dir-link'));
  await chmod(join(root, 'lib/deep'), 0o750);
}

export interface TreeItem {
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  mode?: number;
  hash?: string;
  target?: string;
}

/** Everything that must survive a round trip: kinds, modes, bytes, link targets. */
export async function describeTree(root: string): Promise<TreeItem[]> {
  const out: TreeItem[] = [];
  const visit = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full);
      if (st.isSymbolicLink()) out.push({ path, kind: 'symlink', target: await readlink(full) });
      else if (st.isDirectory()) {
        out.push({ path, kind: 'dir', mode: st.mode & 0o7777 });
        await visit(path);
      } else {
        out.push({ path, kind: 'file', mode: st.mode & 0o7777, hash: createHash('sha256').update(await readFile(full)).digest('hex') });
      }
    }
  };
  await visit('');
  return out;
}

/** All files under a folder with their bytes' hashes: to prove nothing changed. */
export async function snapshot(root: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const item of await describeTree(root)) map.set(item.path, `${item.kind}:${item.hash ?? item.target ?? ''}`);
  return map;
}
