import { SitecastError } from '../errors.js';

/**
 * Checks that `buf` is exactly one zstd frame that declares its content size,
 * and returns that size, before anything decompresses it: the decompressor
 * allocates what a frame header claims, so a hostile header claiming
 * gigabytes must be refused here (RFC 8878, section 3.1.1).
 */
export function singleFrameContentSize(buf: Uint8Array, maxContentSize: number, what: string): number {
  const fail = (why: string): never => {
    throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `${what} is not a valid compressed frame: ${why}`);
  };
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.length < 6 || view.readUInt32LE(0) !== 0xfd2fb528) fail('bad magic number');
  const descriptor = view.readUInt8(4);
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictFlag = descriptor & 3;
  if ((descriptor >> 3) & 1) fail('reserved bit set');
  let pos = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) fail('content size not declared');
  if (pos + fcsBytes > view.length) fail('truncated header');
  let size: number;
  if (fcsBytes === 1) size = view.readUInt8(pos);
  else if (fcsBytes === 2) size = view.readUInt16LE(pos) + 256;
  else if (fcsBytes === 4) size = view.readUInt32LE(pos);
  else size = Number(view.readBigUInt64LE(pos));
  pos += fcsBytes;
  if (size > maxContentSize) fail(`declares ${size} bytes, more than the ${maxContentSize} allowed`);
  for (;;) {
    if (pos + 3 > view.length) fail('truncated block');
    const header = view.readUIntLE(pos, 3);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const blockSize = header >> 3;
    if (type === 3) fail('reserved block type');
    pos += 3 + (type === 1 ? 1 : blockSize);
    if (pos > view.length) fail('truncated block');
    if (last) break;
  }
  if (checksum) pos += 4;
  if (pos !== view.length) fail(pos > view.length ? 'truncated checksum' : 'data after the frame');
  return size;
}
