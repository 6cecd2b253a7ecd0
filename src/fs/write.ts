import type { FileHandle } from 'node:fs/promises';

/**
 * Writes every byte of `data`, at `position` (or at the file's offset when
 * null). write(2) may store fewer bytes than asked without an error, most
 * often when the disk fills mid-buffer; the next call then reports ENOSPC.
 * Callers that ignored the count could rename a truncated file into place.
 */
export async function writeFully(handle: FileHandle, data: Uint8Array, position: number | null = null): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await handle.write(data, off, data.length - off, position === null ? null : position + off);
    if (bytesWritten === 0) throw Object.assign(new Error('no space left on device (a write stored nothing)'), { code: 'ENOSPC' });
    off += bytesWritten;
  }
}
