import { z } from 'zod';

/**
 * The package archive: one streamable file holding a full package version or
 * a delta against an older one. Layout (all integers little-endian):
 *
 *   magic "SCARCHIV" (8 bytes), format version u16, reserved u16
 *   records: type u8, length u32, payload
 *     0x01 header    JSON (ArchiveHeader)
 *     0x02 manifest  canonical manifest bytes, as one zstd frame
 *     0x03 chunk     32-byte SHA-256 of the raw chunk + its zstd frame
 *     0x04 patch     u32 meta length + JSON (PatchMeta) + patch bytes
 *     0x7f end       SHA-256 of every byte before this record
 *
 * Header first, manifest second, end last; nothing may follow the end. The
 * end record is what tells a complete file from a truncated one.
 */
export const ARCHIVE_MAGIC = Buffer.from('SCARCHIV', 'latin1');
export const ARCHIVE_FORMAT = 1;
export const PREAMBLE_SIZE = 12;

export const RECORD = { header: 0x01, manifest: 0x02, chunk: 0x03, patch: 0x04, end: 0x7f } as const;

/** Larger records are refused before any allocation: a hostile length must not exhaust memory. */
export const MAX_RECORD = 512 * 1024 * 1024;
export const MAX_HEADER = 64 * 1024;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const archiveHeaderSchema = z.strictObject({
  kind: z.enum(['full', 'delta']),
  manifest: hex64,
  base: hex64.optional(),
  created: z.string().max(64),
  chunks: z.number().int().min(0),
  patches: z.number().int().min(0),
});
export type ArchiveHeader = z.infer<typeof archiveHeaderSchema>;

export const patchMetaSchema = z.strictObject({
  path: z.string().min(1).max(4096),
  /** SHA-256 of the file the receiver already holds. */
  base: hex64,
  /** SHA-256 of the file the patch rebuilds. */
  target: hex64,
});
export type PatchMeta = z.infer<typeof patchMetaSchema>;
