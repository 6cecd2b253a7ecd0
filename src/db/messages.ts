import { z } from 'zod';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import {
  componentSchema,
  isoTimeSchema,
  messageTextSchema,
  packageIdSchema,
  parseInput,
  severitySchema,
  siteCodeSchema,
  type Severity,
} from './values.js';

export interface StatusMessage {
  id: number;
  time: string;
  severity: Severity;
  component: string;
  site: string;
  packageId: string | null;
  text: string;
}

const newMessageSchema = z.object({
  severity: severitySchema,
  component: componentSchema,
  site: siteCodeSchema,
  packageId: packageIdSchema.nullable().default(null),
  text: messageTextSchema,
  time: isoTimeSchema.optional(),
});
export type NewStatusMessage = z.input<typeof newMessageSchema>;

const filterSchema = z.object({
  packageId: packageIdSchema.optional(),
  site: siteCodeSchema.optional(),
  component: componentSchema.optional(),
  /** Only this severity and worse. */
  minSeverity: severitySchema.optional(),
  since: isoTimeSchema.optional(),
  /** For tailing: messages with a larger id, oldest first. */
  afterId: z.number().int().min(0).optional(),
  /** Only these ids (a reader looking again for ids it found missing), oldest first. */
  ids: z.array(z.number().int().min(1)).max(10_000).optional(),
  limit: z.number().int().min(1).max(10_000).default(100),
});
export type StatusMessageFilter = z.input<typeof filterSchema>;

const WORSE_OR_EQUAL: Record<Severity, Severity[]> = {
  info: ['info', 'warning', 'error'],
  warning: ['warning', 'error'],
  error: ['error'],
};

export async function addStatusMessage(site: SiteDb, input: NewStatusMessage): Promise<StatusMessage> {
  const v = parseInput(newMessageSchema, input, 'status message');
  const row = {
    time: v.time ?? new Date().toISOString(),
    severity: v.severity,
    component: v.component,
    site_code: v.site,
    package_id: v.packageId,
    text: v.text,
  };
  const inserted = await guard(site, 'status message', () =>
    site.db.insertInto('status_messages').values(row).returning('id').executeTakeFirstOrThrow(),
  );
  return { id: Number(inserted.id), ...v, time: row.time };
}

/**
 * Status messages matching every given filter: newest first, or, with afterId,
 * the ones after that id oldest first (a console tailing the stream).
 */
export async function listStatusMessages(site: SiteDb, filter: StatusMessageFilter = {}): Promise<StatusMessage[]> {
  const f = parseInput(filterSchema, filter, 'status message filter');
  const rows = await guard(site, 'status messages', () => {
    let q = site.db.selectFrom('status_messages').selectAll();
    if (f.packageId !== undefined) q = q.where('package_id', '=', f.packageId);
    if (f.site !== undefined) q = q.where('site_code', '=', f.site);
    if (f.component !== undefined) q = q.where('component', '=', f.component);
    if (f.minSeverity !== undefined) q = q.where('severity', 'in', WORSE_OR_EQUAL[f.minSeverity]);
    if (f.since !== undefined) q = q.where('time', '>=', f.since);
    if (f.afterId !== undefined) q = q.where('id', '>', f.afterId);
    if (f.ids !== undefined) q = q.where('id', 'in', f.ids.length > 0 ? f.ids : [0]);
    return q
      .orderBy('id', f.afterId === undefined && f.ids === undefined ? 'desc' : 'asc')
      .limit(f.limit)
      .execute();
  });
  return rows.map((r) => ({
    id: Number(r.id),
    time: r.time,
    severity: severitySchema.parse(r.severity),
    component: r.component,
    site: r.site_code,
    packageId: r.package_id,
    text: r.text,
  }));
}

/**
 * Deletes the status messages stamped before `before` (an ISO time), at most
 * `batch` rows per statement so a large backlog never holds the database
 * long; returns how many went.
 */
export async function deleteStatusMessagesBefore(site: SiteDb, before: string, options: { batch?: number } = {}): Promise<number> {
  const cutoff = parseInput(isoTimeSchema, before, 'cutoff time');
  const batch = options.batch ?? 5000;
  let deleted = 0;
  for (;;) {
    const result = await guard(site, 'aged status messages', () =>
      site.db
        .deleteFrom('status_messages')
        .where('id', 'in', (eb) => eb.selectFrom('status_messages').select('id').where('time', '<', cutoff).orderBy('time').limit(batch))
        .executeTakeFirst(),
    );
    const n = Number(result.numDeletedRows);
    deleted += n;
    if (n < batch) return deleted;
  }
}
