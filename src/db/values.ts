import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { SitecastError } from '../errors.js';

/**
 * The checked shape of every value that enters the site database. Repository
 * functions parse their input with these before any SQL runs, so a bad value
 * is refused with SITECAST_E_INVALID_VALUE and nothing is written.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export const siteCodeSchema = z.string().regex(/^[A-Z0-9]{3}$/, 'a site code is 3 upper-case letters or digits');
export const packageIdSchema = z
  .string()
  .regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/, 'a package id is a site code and 5 upper-case hex digits, e.g. CEN00003');
export const prioritySchema = z.enum(['high', 'medium', 'low']);
export const dpStateSchema = z.enum(['pending', 'installed', 'retrying', 'failed']);
export const severitySchema = z.enum(['info', 'warning', 'error']);
export const roleSchema = z.enum(['admin', 'read-only']);
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lower-case hex digits');
export const isoTimeSchema = z.iso.datetime();

/** True when a string holds no control characters (it is one line). */
export function isOneLine(s: string): boolean {
  return !CONTROL.test(s);
}

/** A display name: one line, trimmed, not empty. */
export const nameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200)
  .refine((s) => !CONTROL.test(s), 'must be one line without control characters');
/** A DP or program name: also used in paths and file names, so a safe set. */
export const shortNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/, 'use letters, digits, space, dot, dash, underscore (up to 64)')
  .refine((s) => !s.includes('..'), 'must not contain ".."');
export const absolutePathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
  .refine((s) => isAbsolute(s), 'must be an absolute path');
/** A file inside a package's source folder, as the manifest names it: `/`-separated, relative, no `.` or `..` names. */
export const packageFilePathSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !s.startsWith('/') && !s.includes('\u0000') && !s.includes('\\'), 'must be a path inside the source folder, like setup.ico')
  .refine((s) => s.split('/').every((part) => part !== '' && part !== '.' && part !== '..'), 'must be a plain path inside the source folder: no empty, "." or ".." names');
export const commandLineSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(8192)
  .refine((s) => !CONTROL.test(s.replace(/\t/g, ' ')), 'must be one line');
export const messageTextSchema = z.string().min(1).max(8192);
export const componentSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a component name like distmgr');

export type SiteCode = z.infer<typeof siteCodeSchema>;
export type PackageId = z.infer<typeof packageIdSchema>;
export type Priority = z.infer<typeof prioritySchema>;
export type DpState = z.infer<typeof dpStateSchema>;
export type Severity = z.infer<typeof severitySchema>;
export type Role = z.infer<typeof roleSchema>;

/** Parses a value or throws SITECAST_E_INVALID_VALUE naming the field at fault. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`);
  throw new SitecastError('SITECAST_E_INVALID_VALUE', `${what}: ${issues.join('; ')}`, { cause: result.error });
}
