import type { Kysely } from 'kysely';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import {
  type HourlyRate,
  OPEN_WEEK,
  type Pulse,
  type RateRule,
  UNLIMITED,
  type WeekSchedule,
  type Window,
  applyRates,
  applyWindows,
  isWeekSchedule,
} from '../formats/schedule.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import type { Database } from './schema.js';
import { absolutePathSchema, parseInput, siteCodeSchema } from './values.js';

export type AddressSender = 'http' | 'lan' | 'courier';

/** How, when and how fast this site sends to one target site, and what it has sent so far. */
export interface Address {
  to: string;
  sender: AddressSender;
  /** The target's receive folder (lan) or where parcels are written (courier); null for http. */
  path: string | null;
  schedule: WeekSchedule;
  /** KB/s per hour of the day; null = unlimited. Ignored in pulse mode. */
  rateLimit: HourlyRate;
  pulse: Pulse | null;
  maxConcurrent: number;
  retries: number;
  retryDelaySeconds: number;
  paused: boolean;
  /** Every byte that crossed the link (headers and retries included) since the address was created. */
  bytesSent: number;
  /** Bytes per second over the last few seconds; 0 when idle. */
  currentRate: number;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AddressTable {
  to_site: string;
  sender: string;
  path: string | null;
  schedule: string;
  rate_limit: string;
  pulse_block_kb: number | null;
  pulse_delay_ms: number | null;
  max_concurrent: number;
  retries: number;
  retry_delay_ms: number;
  paused: number;
  bytes_sent: number;
  current_rate: number;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** A change to an address; fields left out keep their value. Windows and rate rules apply in order over what is there. */
export interface AddressChange {
  sender?: AddressSender;
  path?: string | null;
  windows?: readonly Window[];
  rates?: readonly RateRule[];
  /** A pulse switches the address to pulse mode; null switches back to rate mode. */
  pulse?: Pulse | null;
  maxConcurrent?: number;
  retries?: number;
  retryDelaySeconds?: number;
  paused?: boolean;
}

export const ADDRESS_DEFAULTS = { sender: 'http', maxConcurrent: 2, retries: 10, retryDelaySeconds: 5 } as const;

const changeSchema = z.strictObject({
  sender: z.enum(['http', 'lan', 'courier']).optional(),
  path: absolutePathSchema.nullable().optional(),
  maxConcurrent: z.number().int().min(1).max(64).optional(),
  retries: z.number().int().min(0).max(1000).optional(),
  retryDelaySeconds: z.number().min(0).max(86_400).optional(),
  paused: z.boolean().optional(),
  windows: z.array(z.unknown()).optional(),
  rates: z.array(z.unknown()).optional(),
  pulse: z.unknown().optional(),
});

type Db = Kysely<Database & { addresses: AddressTable }>;
function tables(site: SiteDb): Db {
  return site.db.withTables<{ addresses: AddressTable }>();
}

function toAddress(row: AddressTable): Address {
  const schedule = row.schedule.match(/.{24}/g) ?? [];
  return {
    to: row.to_site,
    sender: row.sender as AddressSender,
    path: row.path,
    schedule: isWeekSchedule(schedule) ? schedule : OPEN_WEEK,
    rateLimit: JSON.parse(row.rate_limit) as (number | null)[],
    pulse: row.pulse_block_kb === null || row.pulse_delay_ms === null ? null : { blockKB: row.pulse_block_kb, delaySeconds: row.pulse_delay_ms / 1000 },
    maxConcurrent: row.max_concurrent,
    retries: row.retries,
    retryDelaySeconds: row.retry_delay_ms / 1000,
    paused: row.paused === 1,
    bytesSent: Number(row.bytes_sent),
    currentRate: Number(row.current_rate),
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getAddress(site: SiteDb, to: string): Promise<Address | undefined> {
  const code = parseInput(siteCodeSchema, to, 'address');
  const row = await guard(site, `address ${code}`, () => tables(site).selectFrom('addresses').selectAll().where('to_site', '=', code).executeTakeFirst());
  return row === undefined ? undefined : toAddress(row);
}

export async function listAddresses(site: SiteDb): Promise<Address[]> {
  const rows = await guard(site, 'addresses', () => tables(site).selectFrom('addresses').selectAll().orderBy('to_site').execute());
  return rows.map(toAddress);
}

/**
 * Creates or changes the address to a site, in one transaction. Every value
 * is checked before anything is written: a bad one is refused with
 * SITECAST_E_INVALID_VALUE and the address stays as it was.
 */
export async function setAddress(site: SiteDb, to: string, change: AddressChange): Promise<Address> {
  const code = parseInput(siteCodeSchema, to, 'address');
  const v = parseInput(changeSchema, change, `address ${code}`);
  return guard(site, `address ${code}`, () =>
    tables(site)
      .transaction()
      .execute(async (trx) => {
        const old = await trx.selectFrom('addresses').selectAll().where('to_site', '=', code).executeTakeFirst();
        const now = new Date().toISOString();
        const cur = old === undefined ? undefined : toAddress(old);
        const sender = v.sender ?? cur?.sender ?? ADDRESS_DEFAULTS.sender;
        const path = v.path !== undefined ? v.path : (cur?.path ?? null);
        if (sender !== 'http' && path === null) {
          throw new SitecastError('SITECAST_E_INVALID_VALUE', `address ${code}: the ${sender} sender needs a path (--path <receive dir>)`);
        }
        const schedule = applyWindows(cur?.schedule ?? OPEN_WEEK, change.windows ?? []);
        const rateLimit = applyRates(cur?.rateLimit ?? UNLIMITED, change.rates ?? []);
        // Setting a rate is a choice of rate mode; setting a pulse, of pulse mode.
        const pulse = change.pulse !== undefined ? change.pulse : change.rates !== undefined && change.rates.length > 0 ? null : (cur?.pulse ?? null);
        const row: AddressTable = {
          to_site: code,
          sender,
          path,
          schedule: schedule.join(''),
          rate_limit: JSON.stringify(rateLimit),
          pulse_block_kb: pulse?.blockKB ?? null,
          pulse_delay_ms: pulse === null ? null : Math.round(pulse.delaySeconds * 1000),
          max_concurrent: v.maxConcurrent ?? cur?.maxConcurrent ?? ADDRESS_DEFAULTS.maxConcurrent,
          retries: v.retries ?? cur?.retries ?? ADDRESS_DEFAULTS.retries,
          retry_delay_ms: Math.round((v.retryDelaySeconds ?? cur?.retryDelaySeconds ?? ADDRESS_DEFAULTS.retryDelaySeconds) * 1000),
          paused: (v.paused ?? cur?.paused ?? false) ? 1 : 0,
          bytes_sent: old?.bytes_sent ?? 0,
          current_rate: old?.current_rate ?? 0,
          last_error: old?.last_error ?? null,
          created_at: old?.created_at ?? now,
          updated_at: now,
        };
        if (old === undefined) await trx.insertInto('addresses').values(row).execute();
        else await trx.updateTable('addresses').set(row).where('to_site', '=', code).execute();
        return toAddress(row);
      }),
  );
}

/** Counters the sender keeps: bytes add up, the rate and the last error are replaced (lastError undefined: unchanged). */
export async function recordAddressTraffic(site: SiteDb, to: string, t: { bytes: number; currentRate: number; lastError?: string | null }): Promise<void> {
  const code = parseInput(siteCodeSchema, to, 'address');
  const bytes = Math.max(0, Math.round(t.bytes));
  await guard(site, `address ${code}`, () =>
    tables(site)
      .updateTable('addresses')
      .set((eb) => ({
        bytes_sent: eb('bytes_sent', '+', bytes),
        current_rate: Math.max(0, Math.round(t.currentRate)),
        ...(t.lastError === undefined ? {} : { last_error: t.lastError === null ? null : t.lastError.slice(0, 2000) }),
      }))
      .where('to_site', '=', code)
      .execute(),
  );
}
