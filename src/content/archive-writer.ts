import { createHash, randomBytes, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { compress } from 'zstd-napi';
import { ioError } from '../errors.js';
import { ARCHIVE_FORMAT, ARCHIVE_MAGIC, RECORD, type ArchiveHeader, type PatchMeta } from './archive-format.js';
import { writeFully } from '../fs/write.js';

/**
 * Writes an archive under a temporary name and renames it into place on
 * `finish()`, so a reader (a sender, a courier import) never picks up half
 * of one. Writes are batched to keep syscalls few.
 */
export class ArchiveWriter {
  private readonly hash: Hash = createHash('sha256');
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private written = 0;

  private constructor(
    private readonly handle: FileHandle,
    private readonly tmp: string,
    private readonly target: string,
  ) {}

  static async create(target: string, header: ArchiveHeader): Promise<ArchiveWriter> {
    const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.tmp`);
    let handle: FileHandle;
    try {
      handle = await open(tmp, 'wx', 0o644);
    } catch (err) {
      throw ioError(`cannot create ${target}`, err);
    }
    const writer = new ArchiveWriter(handle, tmp, target);
    const preamble = Buffer.alloc(4);
    preamble.writeUInt16LE(ARCHIVE_FORMAT, 0);
    await writer.push(ARCHIVE_MAGIC);
    await writer.push(preamble);
    await writer.record(RECORD.header, [Buffer.from(JSON.stringify(header))]);
    return writer;
  }

  get bytes(): number {
    return this.written + this.bufferedBytes;
  }

  private async push(data: Buffer): Promise<void> {
    this.hash.update(data);
    this.buffered.push(data);
    this.bufferedBytes += data.length;
    if (this.bufferedBytes >= 4 * 1024 * 1024) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.bufferedBytes === 0) return;
    const data = Buffer.concat(this.buffered);
    this.buffered = [];
    this.written += data.length;
    this.bufferedBytes = 0;
    try {
      await writeFully(this.handle, data);
    } catch (err) {
      throw ioError(`cannot write ${this.target}`, err);
    }
  }

  private async record(type: number, parts: Buffer[]): Promise<void> {
    const head = Buffer.alloc(5);
    head.writeUInt8(type, 0);
    head.writeUInt32LE(parts.reduce((sum, p) => sum + p.length, 0), 1);
    await this.push(head);
    for (const p of parts) await this.push(p);
  }

  /** The manifest travels zstd-compressed: it is JSON, often a tenth of a small delta. */
  manifest(bytes: Buffer): Promise<void> {
    return this.record(RECORD.manifest, [compress(bytes, { compressionLevel: 9 })]);
  }

  chunk(hash: string, frame: Buffer): Promise<void> {
    return this.record(RECORD.chunk, [Buffer.from(hash, 'hex'), frame]);
  }

  patch(meta: PatchMeta, data: Buffer): Promise<void> {
    const json = Buffer.from(JSON.stringify(meta));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length, 0);
    return this.record(RECORD.patch, [len, json, data]);
  }

  /** Writes the end record, flushes, fsyncs and renames into place. Returns the archive size. */
  async finish(): Promise<number> {
    const digest = this.hash.digest();
    const head = Buffer.alloc(5);
    head.writeUInt8(RECORD.end, 0);
    head.writeUInt32LE(digest.length, 1);
    this.buffered.push(head, digest);
    this.bufferedBytes += head.length + digest.length;
    await this.flush();
    try {
      await this.handle.sync();
      await this.handle.close();
      await rename(this.tmp, this.target);
    } catch (err) {
      await this.abort();
      throw ioError(`cannot finish ${this.target}`, err);
    }
    return this.written;
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.tmp, { force: true }).catch(() => undefined);
  }
}
