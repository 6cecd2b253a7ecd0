import { z } from 'zod';
import { SitecastError } from '../errors.js';

/**
 * `<PKGID>.PKN`, the package notification wake-up file the database monitor
 * drops into Distribution Manager's inbox. The name carries the meaning; the
 * body is a small JSON record that lets Distribution Manager check the name
 * was not typed by hand or cut short.
 */
export const PKN_FORMAT = 1;
export const PKN_NAME = /^([A-Z0-9]{3}[0-9A-F]{5})\.PKN$/;

const pknSchema = z.strictObject({
  format: z.literal(PKN_FORMAT),
  packageId: z.string().regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/),
  /** Why it was written: a definition change, or a restart resuming unfinished work. */
  reason: z.enum(['change', 'resume']),
  time: z.iso.datetime(),
});
export type Pkn = z.infer<typeof pknSchema>;

export function pknName(packageId: string): string {
  return `${packageId}.PKN`;
}

export function serializePkn(packageId: string, reason: Pkn['reason']): string {
  const pkn: Pkn = { format: PKN_FORMAT, packageId, reason, time: new Date().toISOString() };
  return `${JSON.stringify(pkn)}\n`;
}

function bad(name: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: ${why}`, {
    hint: 'wake-up files are written by the database monitor; change the package through the provider instead',
  });
}

/** Checks a wake-up file's name and body; anything else is bad input (the inbox parks it in bad/). */
export function parsePkn(name: string, body: Buffer): Pkn {
  const match = PKN_NAME.exec(name);
  if (match === null) throw bad(name, 'not a package notification (<site code><5 hex digits>.PKN)');
  if (body.length > 4096) throw bad(name, `${body.length} bytes is too large for a wake-up file`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(name, 'the body is not JSON');
  }
  const result = pknSchema.safeParse(raw);
  if (!result.success) throw bad(name, `the body does not parse: ${result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  if (result.data.packageId !== match[1]) throw bad(name, `the body names package ${result.data.packageId}`);
  return result.data;
}
