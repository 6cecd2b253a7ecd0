import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Role } from '../../db/values.js';

/**
 * Short-lived signed tickets for the event stream. A browser's EventSource
 * cannot send an Authorization header, so the console trades its token for
 * a ticket (POST /api/v1/events/ticket) and puts that in the URL. A ticket
 * is signed with a key that lives only in this process, names the token by
 * its id (never its secret), and is good for one minute: a URL that lands in
 * a log or a history is worth nothing soon after.
 */

export const TICKET_TTL_MS = 60_000;

const payloadSchema = z.object({ id: z.string().max(100), role: z.enum(['admin', 'read-only']), exp: z.number().int() });
export type TicketHolder = { id: string; role: Role };

export interface TicketSigner {
  issue(holder: TicketHolder, now?: number): { ticket: string; expiresAt: string };
  /** The holder, or undefined for a ticket that is malformed, forged or expired. */
  verify(ticket: string, now?: number): TicketHolder | undefined;
}

export function ticketSigner(key: Buffer = randomBytes(32)): TicketSigner {
  const mac = (body: string): Buffer => createHmac('sha256', key).update(body).digest();
  return {
    issue(holder, now = Date.now()) {
      const exp = now + TICKET_TTL_MS;
      const body = Buffer.from(JSON.stringify({ id: holder.id, role: holder.role, exp })).toString('base64url');
      return { ticket: `${body}.${mac(body).toString('base64url')}`, expiresAt: new Date(exp).toISOString() };
    },
    verify(ticket, now = Date.now()) {
      if (ticket.length > 400) return undefined;
      const [body, sig, extra] = ticket.split('.');
      if (body === undefined || sig === undefined || extra !== undefined) return undefined;
      const given = Buffer.from(sig, 'base64url');
      const want = mac(body);
      if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
      let parsed;
      try {
        parsed = payloadSchema.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
      } catch {
        return undefined;
      }
      if (!parsed.success || parsed.data.exp <= now) return undefined;
      return { id: parsed.data.id, role: parsed.data.role };
    },
  };
}
