import { z } from 'zod';
import { type ErrorCode, isSitecastError } from '../errors.js';

/** Codes every inbox treats as bad input, in addition to the caller's. */
export const DEFAULT_BAD_CODES: readonly ErrorCode[] = [
  'SITECAST_E_BAD_INBOX_FILE',
  'SITECAST_E_INVALID_VALUE',
  'SITECAST_E_UNSAFE_NAME',
];

/**
 * Bad input is a property of the file: retrying cannot help, so the file goes
 * to bad/. Everything else (disk full, database locked, peer down) is assumed
 * transient and retried.
 */
export function isBadInput(err: unknown, codes: ReadonlySet<ErrorCode>): boolean {
  if (isSitecastError(err)) return codes.has(err.code);
  if (err instanceof z.core.$ZodError) return true;
  return err instanceof SyntaxError;
}

/** One line a person can read, for the `.reason` file and the status message. */
export function describeBadInput(err: unknown): string {
  if (err instanceof z.core.$ZodError) return `does not parse: ${z.prettifyError(err).replace(/\s*\n\s*/g, '; ')}`;
  if (isSitecastError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
