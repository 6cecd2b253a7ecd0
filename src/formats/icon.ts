import { createHash } from 'node:crypto';

/**
 * Package icons travel as Windows `.ICO` files, as in SMS. A package may name
 * one in its source folder; one that does not gets a default drawn here: a
 * box in a colour derived from the package id, so two packages are told apart
 * at a glance. Drawn in code so no binary is kept in the repository.
 */
const SIZE = 32;
const HEADER = 6;
const ENTRY = 16;
const BITMAP_INFO = 40;

type Rgba = [number, number, number, number];

function colourFor(seed: string): Rgba {
  const d = createHash('sha256').update(seed).digest();
  // Keep it mid-bright: a dark or washed-out icon is hard to see on either background.
  const c = (i: number): number => 64 + ((d[i] ?? 0) % 128);
  return [c(0), c(1), c(2), 255];
}

function pixel(x: number, y: number, body: Rgba): Rgba {
  const inBox = x >= 3 && x <= 28 && y >= 5 && y <= 28;
  if (!inBox) return [0, 0, 0, 0];
  const edge = x === 3 || x === 28 || y === 5 || y === 28;
  if (edge) return [40, 40, 40, 255];
  const lid = y <= 10;
  const tape = x >= 14 && x <= 17;
  if (tape) return [235, 220, 170, 255];
  if (lid) return [Math.min(255, body[0] + 40), Math.min(255, body[1] + 40), Math.min(255, body[2] + 40), 255];
  return body;
}

/** A 32×32, 32-bit ICO file (one BMP image), about 4 KiB. */
export function defaultIcon(seed: string): Buffer {
  const body = colourFor(seed);
  const xorBytes = SIZE * SIZE * 4;
  const andBytes = (SIZE / 8) * SIZE; // 1 bit per pixel, rows already 4-byte aligned at 32 px
  const imageBytes = BITMAP_INFO + xorBytes + andBytes;
  const out = Buffer.alloc(HEADER + ENTRY + imageBytes);
  out.writeUInt16LE(0, 0); // reserved
  out.writeUInt16LE(1, 2); // type: icon
  out.writeUInt16LE(1, 4); // one image
  out.writeUInt8(SIZE, 6);
  out.writeUInt8(SIZE, 7);
  out.writeUInt8(0, 8); // no palette
  out.writeUInt8(0, 9);
  out.writeUInt16LE(1, 10); // planes
  out.writeUInt16LE(32, 12); // bits per pixel
  out.writeUInt32LE(imageBytes, 14);
  out.writeUInt32LE(HEADER + ENTRY, 18);
  let o = HEADER + ENTRY;
  out.writeUInt32LE(BITMAP_INFO, o);
  out.writeInt32LE(SIZE, o + 4);
  out.writeInt32LE(SIZE * 2, o + 8); // ICO bitmaps state twice the height: image plus mask
  out.writeUInt16LE(1, o + 12);
  out.writeUInt16LE(32, o + 14);
  out.writeUInt32LE(0, o + 16); // BI_RGB
  out.writeUInt32LE(xorBytes + andBytes, o + 20);
  o += BITMAP_INFO;
  // Rows bottom-up, pixels BGRA.
  for (let row = SIZE - 1; row >= 0; row--) {
    for (let x = 0; x < SIZE; x++) {
      const [r, g, b, a] = pixel(x, row, body);
      out.writeUInt8(b, o++);
      out.writeUInt8(g, o++);
      out.writeUInt8(r, o++);
      out.writeUInt8(a, o++);
    }
  }
  // AND mask all zero: the alpha channel decides transparency.
  return out;
}

export const MAX_ICON_BYTES = 1 << 20;

/** Why a buffer is not a plausible ICO file, or undefined when it is. */
export function iconProblem(data: Buffer): string | undefined {
  if (data.length < HEADER + ENTRY) return 'too short for an icon';
  if (data.length > MAX_ICON_BYTES) return `larger than ${MAX_ICON_BYTES} bytes`;
  if (data.readUInt16LE(0) !== 0 || data.readUInt16LE(2) !== 1) return 'not an ICO file (bad header)';
  const count = data.readUInt16LE(4);
  if (count < 1 || count > 64) return `declares ${count} images`;
  if (data.length < HEADER + ENTRY * count) return 'the image directory is truncated';
  for (let i = 0; i < count; i++) {
    const at = HEADER + ENTRY * i;
    const size = data.readUInt32LE(at + 8);
    const offset = data.readUInt32LE(at + 12);
    if (size === 0 || offset < HEADER + ENTRY * count || offset + size > data.length) return `image ${i} lies outside the file`;
  }
  return undefined;
}
