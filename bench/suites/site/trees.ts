import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeShape {
  files: number;
  /** Total bytes, spread evenly over the files. */
  bytes: number;
}

/**
 * Deterministic incompressible bytes: AES-256-CTR over zeros, keyed by the
 * seed. The same seed gives the same tree; another seed a tree sharing no chunk.
 */
function streamOf(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** Writes a package source of `shape` into `dir` (10 files per sub-folder); content depends only on `seed`. */
export async function writeSourceTree(dir: string, seed: string, shape: TreeShape): Promise<void> {
  const per = Math.floor(shape.bytes / shape.files);
  const all = streamOf(seed, per * shape.files);
  for (let i = 0; i < shape.files; i++) {
    const folder = join(dir, `part-${String(Math.floor(i / 10)).padStart(2, '0')}`);
    if (i % 10 === 0) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `file-${String(i).padStart(3, '0')}.bin`), all.subarray(i * per, (i + 1) * per));
  }
  await writeFile(join(dir, 'install.sh'), `#!/bin/sh\n# ${seed}\necho installed\n`, { mode: 0o755 });
}
