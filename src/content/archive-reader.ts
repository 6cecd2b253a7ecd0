import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { decompress } from 'zstd-napi';
import { SitecastError, ioError } from '../errors.js';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_MAGIC,
  MAX_HEADER,
  MAX_RECORD,
  PREAMBLE_SIZE,
  RECORD,
  archiveHeaderSchema,
  patchMetaSchema,
  type ArchiveHeader,
  type PatchMeta,
} from './archive-format.js';
import { singleFrameContentSize } from './zstd-frame.js';

/** A manifest of a million files is about 300 MB; larger is refused before decompressing. */
const MAX_MANIFEST = 512 * 1024 * 1024;

export type ArchiveRecord =
  | { type: 'header'; header: ArchiveHeader }
  | { type: 'manifest'; bytes: Buffer }
  | { type: 'chunk'; hash: string; frame: Buffer }
  | { type: 'patch'; meta: PatchMeta; data: Buffer }
  | { type: 'end' };

function bad(message: string, cause?: unknown): SitecastError {
  return new SitecastError('SITECAST_E_BAD_ARCHIVE', message, {
    hint: 'fetch or build the file again; nothing from it was applied',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Pulls exact byte counts out of a stream of blocks. */
class ByteQueue {
  private blocks: Buffer[] = [];
  private size = 0;
  private ended = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.size < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else {
        this.blocks.push(next.value);
        this.size += next.value.length;
      }
    }
    return this.size >= n;
  }

  /** Exactly n bytes, or null if the stream ends first. */
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const all = this.blocks.length === 1 ? (this.blocks[0] as Buffer) : Buffer.concat(this.blocks);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.blocks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

function parseJson<T>(bytes: Buffer, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw bad(`archive ${what} is not valid JSON`, err);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw bad(`archive ${what} does not parse`);
  return parsed.data;
}

/**
 * Reads an archive record by record, checking the framing as it goes: magic,
 * format version, record order and lengths, and at the end the SHA-256 over
 * the whole file. Callers must not apply anything before they see `end`.
 */
export async function* readArchive(path: string): AsyncGenerator<ArchiveRecord> {
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const queue = new ByteQueue(iterator);
  const hash = createHash('sha256');
  try {
    const preamble = await queue.take(PREAMBLE_SIZE).catch((err: unknown) => {
      throw ioError(`cannot read ${path}`, err);
    });
    if (!preamble || !preamble.subarray(0, 8).equals(ARCHIVE_MAGIC)) throw bad(`${path} is not a Sitecast package archive`);
    const format = preamble.readUInt16LE(8);
    if (format === ARCHIVE_FORMAT && preamble.readUInt16LE(10) !== 0) throw bad(`archive ${path} has reserved bits set in its preamble`);
    if (format !== ARCHIVE_FORMAT) {
      throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `archive ${path} has format ${format}; this build reads format ${ARCHIVE_FORMAT}`, {
        hint: 'upgrade Sitecast on this machine',
      });
    }
    hash.update(preamble);
    let index = 0;
    for (;;) {
      const head = await queue.take(5);
      if (!head) throw bad(`archive ${path} is truncated (no end record)`);
      const type = head.readUInt8(0);
      const length = head.readUInt32LE(1);
      if (length > MAX_RECORD) throw bad(`archive record ${index} claims ${length} bytes, more than the ${MAX_RECORD} allowed`);
      if (type === RECORD.end) {
        if (length !== 32) throw bad(`archive ${path} has an end record of ${length} bytes, not 32`);
        const digest = await queue.take(length);
        if (!digest) throw bad(`archive ${path} is truncated (short end record)`);
        if (!digest.equals(hash.digest())) throw bad(`archive ${path} is corrupt (checksum does not match)`);
        if (!(await queue.atEnd())) throw bad(`archive ${path} has data after its end record`);
        yield { type: 'end' };
        return;
      }
      if (type === RECORD.header && length > MAX_HEADER) throw bad(`archive header claims ${length} bytes, more than the ${MAX_HEADER} allowed`);
      hash.update(head);
      const payload = await queue.take(length);
      if (!payload) throw bad(`archive ${path} is truncated (record ${index} cut short)`);
      hash.update(payload);
      yield decodeRecord(type, payload, index);
      index++;
    }
  } finally {
    stream.destroy();
  }
}

function decodeRecord(type: number, payload: Buffer, index: number): ArchiveRecord {
  const expectHeader = index === 0;
  if (expectHeader !== (type === RECORD.header)) throw bad(`archive record ${index} is out of order (the header comes first, once)`);
  if ((index === 1) !== (type === RECORD.manifest)) throw bad(`archive record ${index} is out of order (the manifest comes second, once)`);
  switch (type) {
    case RECORD.header:
      return { type: 'header', header: parseJson(payload, archiveHeaderSchema, 'header') };
    case RECORD.manifest: {
      try {
        singleFrameContentSize(payload, MAX_MANIFEST, 'archive manifest');
        return { type: 'manifest', bytes: decompress(payload) };
      } catch (err) {
        throw bad(`archive manifest does not decompress${err instanceof Error ? ` (${err.message})` : ''}`, err);
      }
    }
    case RECORD.chunk:
      if (payload.length < 33) throw bad(`archive chunk record ${index} is too short`);
      return { type: 'chunk', hash: payload.subarray(0, 32).toString('hex'), frame: payload.subarray(32) };
    case RECORD.patch: {
      if (payload.length < 4) throw bad(`archive patch record ${index} is too short`);
      const metaLength = payload.readUInt32LE(0);
      if (metaLength > MAX_HEADER || 4 + metaLength > payload.length) throw bad(`archive patch record ${index} has a bad meta length`);
      const meta = parseJson(payload.subarray(4, 4 + metaLength), patchMetaSchema, `patch record ${index}`);
      return { type: 'patch', meta, data: payload.subarray(4 + metaLength) };
    }
    default:
      throw bad(`archive record ${index} has unknown type 0x${type.toString(16)}`);
  }
}
