import { z } from 'zod';
import { absolutePathSchema, siteCodeSchema } from '../../db/values.js';
import type { RouteSpec } from './contract.js';

/**
 * The admin API's address routes: how this site sends to each target site,
 * and what is queued and flowing. Part of the contract: ROUTES in
 * contract.ts includes ADDRESS_ROUTES. (The prefix is spelled out: this
 * module is imported by contract.ts and must not import values from it.)
 */
const PREFIX = '/api/v1';

export const addressParamsSchema = z.object({ to: siteCodeSchema });

/** Windows, rates and pulse are the text an administrator types; the provider parses them and names the one that does not. */
export const setAddressBodySchema = z.strictObject({
  sender: z.enum(['http', 'lan', 'courier']).optional(),
  path: absolutePathSchema.optional(),
  /** "<days> <HH-HH> <all|medium|high|closed>", applied in order over the current schedule. */
  windows: z.array(z.string().max(200)).max(200).optional(),
  /** "<n>KB/s" or "unlimited", optionally after "HH-HH "; switches to rate mode. */
  rates: z.array(z.string().max(100)).max(48).optional(),
  /** "<KB>:<seconds>" switches to pulse mode; "off" back to rate mode. */
  pulse: z.string().max(40).optional(),
  maxConcurrent: z.number().int().min(1).max(64).optional(),
  retries: z.number().int().min(0).max(1000).optional(),
  /** Seconds before the first retry; doubles at each failure. */
  retryDelay: z.number().min(0).max(86_400).optional(),
  paused: z.boolean().optional(),
});
export type SetAddressBody = z.infer<typeof setAddressBodySchema>;

export const addressSchema = z.object({
  to: siteCodeSchema,
  sender: z.enum(['http', 'lan', 'courier']),
  path: z.string().nullable(),
  /** 7 strings (Monday first) of 24 hours: a = all, m = medium and high, h = high, c = closed. */
  schedule: z.array(z.string()),
  /** KB/s per hour of the day; null = unlimited. */
  rateLimit: z.array(z.number().nullable()),
  pulse: z.object({ blockKB: z.number(), delaySeconds: z.number() }).nullable(),
  maxConcurrent: z.number().int(),
  retries: z.number().int(),
  retryDelay: z.number(),
  paused: z.boolean(),
  /** Whether an address row exists (false: defaults, seen only because requests are queued). */
  configured: z.boolean(),
  queued: z.number().int(),
  sending: z.number().int(),
  bytesSent: z.number().int(),
  /** Bytes per second over the last seconds. */
  rate: z.number(),
  lastError: z.string().nullable(),
});
export type AddressView = z.infer<typeof addressSchema>;
export const addressListSchema = z.object({ addresses: z.array(addressSchema) });

export const ADDRESS_ROUTES = {
  listAddresses: {
    method: 'GET',
    url: `${PREFIX}/addresses`,
    summary: 'Every address: schedule, limits, queue, bytes sent, current rate, last error',
    access: 'read',
    status: 200,
    response: addressListSchema,
  },
  getAddress: {
    method: 'GET',
    url: `${PREFIX}/addresses/:to`,
    summary: 'The address of one target site',
    access: 'read',
    params: addressParamsSchema,
    status: 200,
    response: addressSchema,
  },
  setAddress: {
    method: 'PUT',
    url: `${PREFIX}/addresses/:to`,
    summary: 'Create or change the address of a target site (fields left out keep their value)',
    access: 'write',
    params: addressParamsSchema,
    body: setAddressBodySchema,
    status: 200,
    response: addressSchema,
  },
} as const satisfies Record<string, RouteSpec>;
