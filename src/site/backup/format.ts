import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import { SitecastError } from '../../errors.js';
import { writeFully } from '../../fs/write.js';

/**
 * A site backup: one file, written front to back, read front to back.
 *
 *   SITECAST-BACKUP 1\n
 *   <frame>…
 *   \nSITECAST-BACKUP-END <sha256 of every byte before this line>\n
 *
 * A frame is one line of JSON (its header) followed by header.bytes bytes of
 * body. The first frame is `site`, the last `end`; between them the database
 * rows (`rows`, gzip-compressed JSON lines, parents before children) and then
 * the files (`file`). Format: docs/formats/backup.md.
 */
export const BACKUP_MAGIC = 'SITECAST-BACKUP 1\n';
export const BACKUP_FORMAT = 1;
const END_PREFIX = '\nSITECAST-BACKUP-END ';
export const TRAILER_BYTES = END_PREFIX.length + 64 + 1;
/** A header line longer than this is not one this build wrote. */
export const MAX_HEADER = 1 << 20;

const value = z.union([z.string(), z.number(), z.null()]);
export type CellValue = z.infer<typeof value>;
export const rowSchema = z.array(value);

const identifier = z.string().regex(/^[a-z_][a-z0-9_]*$/);

export const siteFrameSchema = z.strictObject({
  kind: z.literal('site'),
  format: z.number().int(),
  createdAt: z.string(),
  sitecast: z.string(),
  site: z.string().regex(/^[A-Z0-9]{3}$/),
  schemaVersion: z.number().int().min(1),
  database: z.enum(['sqlite', 'postgres']),
  /** site.json, with any database password masked. */
  config: z.record(z.string(), z.unknown()),
  bytes: z.literal(0),
});

export const rowsFrameSchema = z.strictObject({
  kind: z.literal('rows'),
  table: identifier,
  columns: z.array(identifier).min(1),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
});

export const fileFrameSchema = z.strictObject({
  kind: z.literal('file'),
  path: z.string().min(1).max(4096),
  mode: z.number().int().min(0).max(0o7777),
  bytes: z.number().int().min(0),
});

export const endFrameSchema = z.strictObject({
  kind: z.literal('end'),
  tables: z.record(z.string(), z.number().int().min(0)),
  files: z.number().int().min(0),
  chunks: z.number().int().min(0),
  bytes: z.literal(0),
});

export const frameSchema = z.discriminatedUnion('kind', [siteFrameSchema, rowsFrameSchema, fileFrameSchema, endFrameSchema]);
export type SiteFrame = z.infer<typeof siteFrameSchema>;
export type RowsFrame = z.infer<typeof rowsFrameSchema>;
export type FileFrame = z.infer<typeof fileFrameSchema>;
export type EndFrame = z.infer<typeof endFrameSchema>;
export type Frame = z.infer<typeof frameSchema>;

export function badBackup(file: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_BACKUP', `${file}: ${why}`, {
    hint: 'use another copy of the backup, or make a new one with `sitecast site backup`; nothing was restored',
  });
}

/** Appends to a backup file, hashing every byte; finish() writes the trailer. */
export class BackupWriter {
  private readonly hash: Hash = createHash('sha256');
  private written = 0;

  constructor(private readonly handle: FileHandle) {}

  get bytes(): number {
    return this.written;
  }

  async write(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    await writeFully(this.handle, data);
    this.written += data.length;
  }

  async frame(header: Frame, body?: Uint8Array): Promise<void> {
    await this.write(Buffer.from(`${JSON.stringify(header)}\n`));
    if (body !== undefined) await this.write(body);
  }

  async finish(): Promise<void> {
    const trailer = Buffer.from(`${END_PREFIX}${this.hash.digest('hex')}\n`);
    await writeFully(this.handle, trailer);
    this.written += trailer.length;
  }
}

/**
 * Checks a backup file whole before anything is restored from it: the magic,
 * the trailer, and the SHA-256 of everything before the trailer. Returns where
 * the frames end.
 */
export async function verifyBackupFile(handle: FileHandle, file: string, onProgress?: (done: number, total: number) => void): Promise<number> {
  const size = (await handle.stat()).size;
  const magic = Buffer.alloc(BACKUP_MAGIC.length);
  await handle.read(magic, 0, magic.length, 0);
  if (size < BACKUP_MAGIC.length || magic.toString('latin1') !== BACKUP_MAGIC) {
    if (magic.toString('latin1').startsWith('SITECAST-BACKUP ')) {
      throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `${file} is a Sitecast backup of a format this build does not read`, {
        hint: 'restore it with the Sitecast version that made it, or a newer one',
      });
    }
    throw badBackup(file, 'not a Sitecast backup (it does not start with SITECAST-BACKUP 1)');
  }
  if (size < BACKUP_MAGIC.length + TRAILER_BYTES) throw badBackup(file, 'cut short: the end marker is missing');
  const end = size - TRAILER_BYTES;
  const trailer = Buffer.alloc(TRAILER_BYTES);
  await handle.read(trailer, 0, TRAILER_BYTES, end);
  const m = /^\nSITECAST-BACKUP-END ([0-9a-f]{64})\n$/.exec(trailer.toString('latin1'));
  if (m === null) throw badBackup(file, 'cut short or damaged: the end marker is missing');
  const hash = createHash('sha256');
  const buf = Buffer.alloc(4 << 20);
  for (let at = 0; at < end; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, end - at), at);
    if (bytesRead === 0) throw badBackup(file, 'cut short while it was read');
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
    onProgress?.(at, end);
  }
  if (hash.digest('hex') !== m[1]) throw badBackup(file, 'the checksum does not match: the file was damaged or cut short');
  return end;
}

/** Reads frames in order from a file already checked by verifyBackupFile. */
export class FrameReader {
  private buf = Buffer.alloc(0);
  private pos: number;

  constructor(
    private readonly handle: FileHandle,
    private readonly file: string,
    readonly end: number,
  ) {
    this.pos = BACKUP_MAGIC.length;
  }

  /** Bytes consumed so far (for progress). */
  get position(): number {
    return this.pos - this.buf.length;
  }

  get done(): boolean {
    return this.pos >= this.end && this.buf.length === 0;
  }

  private async fill(min: number): Promise<void> {
    while (this.buf.length < min) {
      const want = Math.min(Math.max(min - this.buf.length, 1 << 20), this.end - this.pos);
      if (want <= 0) throw badBackup(this.file, 'a frame runs past the end of the backup');
      const chunk = Buffer.alloc(want);
      const { bytesRead } = await this.handle.read(chunk, 0, want, this.pos);
      if (bytesRead === 0) throw badBackup(this.file, 'cut short while it was read');
      this.pos += bytesRead;
      this.buf = this.buf.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]);
    }
  }

  async next(): Promise<Frame> {
    let nl = this.buf.indexOf(0x0a);
    while (nl < 0) {
      if (this.buf.length > MAX_HEADER) throw badBackup(this.file, 'a frame header is too long');
      await this.fill(this.buf.length + 1);
      nl = this.buf.indexOf(0x0a);
    }
    const line = this.buf.subarray(0, nl).toString('utf8');
    this.buf = this.buf.subarray(nl + 1);
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw badBackup(this.file, 'a frame header is not JSON');
    }
    const parsed = frameSchema.safeParse(raw);
    if (!parsed.success) {
      throw badBackup(this.file, `a frame header does not parse: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
    }
    return parsed.data;
  }

  /** The whole body of the current frame (for row batches, which are small). */
  async body(bytes: number): Promise<Buffer> {
    await this.fill(bytes);
    const out = Buffer.from(this.buf.subarray(0, bytes));
    this.buf = this.buf.subarray(bytes);
    return out;
  }

  /** The body in pieces of at most 1 MiB (for files, which may be large). */
  async *pieces(bytes: number): AsyncGenerator<Buffer> {
    let left = bytes;
    while (left > 0) {
      await this.fill(Math.min(left, 1 << 20));
      const n = Math.min(left, this.buf.length);
      const piece = Buffer.from(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      left -= n;
      yield piece;
    }
  }
}
