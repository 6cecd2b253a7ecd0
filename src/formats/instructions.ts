import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { iconProblem } from './icon.js';

/**
 * The three instruction files Distribution Manager writes for clients, as in
 * SMS 2.0: `<PKGID>.PKG` (package and programs), `<PKGID>.NAL` (where the DPs
 * are) and `<PKGID>.ICO` (the icon). Inbox Manager checks them with these
 * schemas before copying them to the management point, and the management
 * point serves only names that match INSTRUCTION_NAME. The formats are
 * described in docs/formats/instruction-files.md.
 */
export const INSTRUCTION_FORMAT = 1;
export const INSTRUCTION_NAME = /^([A-Z0-9]{3}[0-9A-F]{5})\.(PKG|NAL|ICO)$/;
export type InstructionKind = 'PKG' | 'NAL' | 'ICO';

const packageId = z.string().regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const pkgFileSchema = z.strictObject({
  format: z.literal(INSTRUCTION_FORMAT),
  packageId,
  name: z.string().min(1).max(200),
  version: z.string().max(64),
  priority: z.enum(['high', 'medium', 'low']),
  sourceVersion: z.number().int().min(1),
  /** Id of the content manifest of this source version (SHA-256 of its canonical bytes). */
  manifest: sha256,
  programs: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(64),
        commandLine: z.string().min(1).max(8192),
        maxRunTimeSeconds: z.number().int().min(1),
      }),
    )
    .max(64),
});
export type PkgFile = z.infer<typeof pkgFileSchema>;

export const nalFileSchema = z.strictObject({
  format: z.literal(INSTRUCTION_FORMAT),
  packageId,
  sourceVersion: z.number().int().min(1),
  /** DPs holding this source version, in the order a client should try them. */
  locations: z
    .array(
      z.strictObject({
        site: z.string().regex(/^[A-Z0-9]{3}$/),
        dp: z.string().min(1).max(64),
        /** The share over HTTP, ending in `/`; a file's URL is this plus its path. */
        url: z.url({ protocol: /^https?$/ }),
        /** The share on the DP's own file system. */
        path: z.string().min(1).max(4096),
      }),
    )
    .max(10_000),
});
export type NalFile = z.infer<typeof nalFileSchema>;

export function instructionName(packageId: string, kind: InstructionKind): string {
  return `${packageId}.${kind}`;
}

/** Canonical bytes: the same definition always gives the same file. */
export function serializeInstruction(value: PkgFile | NalFile): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function bad(name: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: ${why}`, {
    hint: 'instruction files are written by Distribution Manager; run the package through it again',
  });
}

const MAX_JSON = 16 * 1024 * 1024;

/** Checks an instruction file's name and content; throws SITECAST_E_BAD_INBOX_FILE when either is wrong. */
export function checkInstructionFile(name: string, data: Buffer): { packageId: string; kind: InstructionKind; sourceVersion?: number } {
  const match = INSTRUCTION_NAME.exec(name);
  if (match === null) throw bad(name, 'not an instruction file (<PKGID>.PKG, .NAL or .ICO)');
  const id = match[1] as string;
  const kind = match[2] as InstructionKind;
  if (kind === 'ICO') {
    const problem = iconProblem(data);
    if (problem !== undefined) throw bad(name, problem);
    return { packageId: id, kind };
  }
  if (data.length > MAX_JSON) throw bad(name, `${data.length} bytes is too large`);
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch {
    throw bad(name, 'the content is not JSON');
  }
  const result = (kind === 'PKG' ? pkgFileSchema : nalFileSchema).safeParse(raw);
  if (!result.success) {
    throw bad(name, `the content does not parse: ${result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  }
  if (result.data.packageId !== id) throw bad(name, `the content names package ${result.data.packageId}`);
  return { packageId: id, kind, sourceVersion: result.data.sourceVersion };
}
