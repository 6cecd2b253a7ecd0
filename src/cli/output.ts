import { SitecastError, isSitecastError } from '../errors.js';
import { redact } from '../redact.js';

export { redact };

/** Where a command writes: injectable so tests run commands in-process. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stderr is a terminal: progress bars are drawn only then. */
  interactive: boolean;
  /** Environment variables (SITECAST_URL, SITECAST_TOKEN); default none. */
  env?: Readonly<Record<string, string | undefined>>;
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY),
  env: process.env,
};

/**
 * Exit status of `package wait` when it could not find out (bad arguments,
 * an unknown package, the site unreachable): distinct from its verdicts 1
 * (failed) and 2 (timed out), so a script never takes an error for one.
 */
export const WAIT_ERROR_EXIT = 3;

export function printJson(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value)}\n`);
}

/**
 * Reports a failure: the code and message on stderr for people, and with
 * --json the same as one JSON object on stdout for scripts. Unknown errors
 * are bugs; they keep their stack on stderr.
 */
export function reportError(io: Io, err: unknown, json: boolean): void {
  if (isSitecastError(err)) {
    io.stderr(`error ${err.code}: ${redact(err.message)}\n`);
    if (err.hint) io.stderr(`hint: ${err.hint}\n`);
    if (json) printJson(io, { error: { code: err.code, message: redact(err.message), ...(err.hint ? { hint: err.hint } : {}) } });
    return;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  io.stderr(`error: ${redact(e.message)}\n${e.stack ?? ''}\n`);
  if (json) printJson(io, { error: { code: 'SITECAST_E_INTERNAL', message: redact(e.message) } });
}

export function usage(message: string): SitecastError {
  return new SitecastError('SITECAST_E_USAGE', message, { hint: 'see `sitecast --help`' });
}
