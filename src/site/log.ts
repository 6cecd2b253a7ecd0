import { appendFile, mkdir } from 'node:fs/promises';
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
}

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
  let tail: Promise<void> = mkdir(dir, { recursive: true }).then(
    () => undefined,
    (err: unknown) => onWriteError(err),
  );

  const write = (level: LogLevel, message: string): void => {
    const folded = redact(message).replace(/\r?\n/g, ' ⏎ ');
    const line = `${now().toISOString()} ${level.padEnd(5)} ${folded}\n`;
    tail = tail.then(() => appendFile(path, line, { mode: 0o640 })).catch((err: unknown) => onWriteError(err));
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
