import { readdir } from 'node:fs/promises';
import { ioError } from '../errors.js';

/** The names in a folder; none when the folder does not exist. Any other failure is SITECAST_E_IO naming the folder. */
export async function listFolder(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`cannot list ${dir}`, err);
  }
}
