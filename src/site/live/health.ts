import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { listStatusMessages, type SiteDb } from '../../db/index.js';
import { redact } from '../log.js';
import type { SitePaths } from '../layout.js';
import { type InboxBacklog, readBacklogs } from './snapshot.js';

export interface ComponentHealth {
  component: string;
  inboxes: { inbox: string; files: number; bad: number }[];
  /** The newest error status message of the component, if any. */
  lastError: { time: string; text: string } | null;
  /** The last lines of logs/<component>.log. */
  logTail: string[];
}

/** Every component the executive runs, so one that has no inbox (dbmon, sender) is listed too. */
const COMPONENTS = ['dbmon', 'distmgr', 'inboxmgr', 'replmgr', 'scheduler', 'sender', 'despooler', 'statmgr', 'provider'];
const TAIL_BYTES = 16 * 1024;
const TAIL_LINES = 20;

async function tail(file: string): Promise<string[]> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n').filter((l) => l !== '');
    // The first line may be cut when the file is longer than what was read.
    if (size > length) lines.shift();
    return lines.slice(-TAIL_LINES).map(redact);
  } finally {
    await handle.close();
  }
}

/** Backlog, last error and log tail of every component, for the console's health view. */
export async function readHealth(db: SiteDb, paths: Pick<SitePaths, 'inboxes' | 'logs'>): Promise<ComponentHealth[]> {
  const backlogs: InboxBacklog[] = await readBacklogs(paths);
  const names = [...new Set([...COMPONENTS, ...backlogs.map((b) => b.component)])];
  return Promise.all(
    names.map(async (component) => {
      const [last] = await listStatusMessages(db, { component, minSeverity: 'error', limit: 1 }).catch(() => []);
      return {
        component,
        inboxes: backlogs.filter((b) => b.component === component).map(({ inbox, files, bad }) => ({ inbox, files, bad })),
        lastError: last === undefined ? null : { time: last.time, text: last.text },
        logTail: await tail(join(paths.logs, `${component}.log`)),
      };
    }),
  );
}
