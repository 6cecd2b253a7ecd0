import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SitecastError, isSitecastError } from '../errors.js';
import { redact } from '../redact.js';

export { redact };

export type LogLevel = 'INFO' | 'WARN' | 'ERROR';

export interface ComponentLog {
  readonly component: string;
  readonly path: string;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, err?: unknown): void;
  /** Resolves when every line so far is written. */
  flush(): Promise<void>;
}

export interface LogOptions {
  /** Where a failed write is reported (default: once to stderr). Logging never throws. */
  onWriteError?: (err: unknown) => void;
  now?: () => Date;
  /** A log that would grow past this many bytes is moved to `<component>.lo_` first (default 10 MiB). */
  maxBytes?: number;
}

/** As in SMS: a full `<component>.log` becomes `<component>.lo_`, replacing the one before. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

const COMPONENT = /^[a-z][a-z0-9_-]{0,31}$/;

function describe(err: unknown): string {
  if (isSitecastError(err)) return `${err.code}: ${err.message}${err.hint === undefined ? '' : ` (hint: ${err.hint})`}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * A component's log, `<root>/logs/<component>.log`: one line per entry,
 * `<ISO time> <LEVEL> <message>`, appended in call order. Multi-line messages
 * are folded onto one line so a line is always one entry (grep-friendly).
 * A log about to pass `maxBytes` is renamed to `<component>.lo_` (the one
 * before is replaced) and a new one started, so a site's logs stay bounded
 * at about twice `maxBytes` per component.
 */
export function createLogger(root: string, component: string, options: LogOptions = {}): ComponentLog {
  if (!COMPONENT.test(component)) {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `log component ${JSON.stringify(component)} is not a name like distmgr`);
  }
  const dir = join(root, 'logs');
  const path = join(dir, `${component}.log`);
  const now = options.now ?? ((): Date => new Date());
  let warned = false;
  const onWriteError =
    options.onWriteError ??
    ((err: unknown): void => {
      if (warned) return;
      warned = true;
      process.stderr.write(`sitecast: cannot write ${path}: ${describe(err)}\n`);
    });
  const maxBytes = options.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
  const previous = join(dir, `${component}.lo_`);
  /** Bytes in the current log; read once from the file, then counted. */
  let size: number | undefined;
  let tail: Promise<void> = mkdir(dir, { recursive: true }).then(
    () => undefined,
    (err: unknown) => onWriteError(err),
  );

  const append = async (line: string): Promise<void> => {
    const bytes = Buffer.byteLength(line);
    size ??= await stat(path).then(
      (st) => st.size,
      () => 0,
    );
    if (size > 0 && size + bytes > maxBytes) {
      await rename(path, previous);
      size = 0;
    }
    await appendFile(path, line, { mode: 0o640 });
    size += bytes;
  };

  const write = (level: LogLevel, message: string): void => {
    const folded = redact(message).replace(/\r?\n/g, ' ⏎ ');
    const line = `${now().toISOString()} ${level.padEnd(5)} ${folded}\n`;
    tail = tail.then(() => append(line)).catch((err: unknown) => {
      // The count may be off after a failed write: read it from the file next time.
      size = undefined;
      onWriteError(err);
    });
  };

  return {
    component,
    path,
    info: (message) => write('INFO', message),
    warn: (message) => write('WARN', message),
    error: (message, err) => write('ERROR', err === undefined ? message : `${message}: ${describe(err)}`),
    flush: () => tail,
  };
}
