import zstd from 'zstd-napi/binding.js';
import { SitecastError } from '../errors.js';

/**
 * Checks that `buf` is exactly one zstd frame that declares its content size,
 * and returns that size, before anything decompresses it: the decompressor
 * allocates what a frame header claims, so a hostile header claiming
 * gigabytes must be refused here.
 */
export function singleFrameContentSize(buf: Uint8Array, maxContentSize: number, what: string): number {
  const fail = (why: string): never => {
    throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `${what} is not a valid compressed frame: ${why}`);
  };
  let frameSize: number;
  let size: number | null;
  try {
    frameSize = zstd.findFrameCompressedSize(buf);
    size = zstd.getFrameContentSize(buf);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  if (frameSize !== buf.length) fail('data after the frame');
  if (size === null) return fail('content size not declared');
  if (size > maxContentSize) fail(`declares ${size} bytes, more than the ${maxContentSize} allowed`);
  return size;
}
