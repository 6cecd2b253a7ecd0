import { z } from 'zod';
import { isoTimeSchema, nameSchema, packageIdSchema, shortNameSchema, siteCodeSchema } from '../../db/values.js';
import { ruleSchema } from '../../formats/collection-rule.js';
import { parseIpRange } from '../../formats/ip-range.js';
import type { RouteSpec } from './contract.js';

/**
 * The admin API's client routes: collections, advertisements and their
 * status, registered clients, boundaries. Part of the contract: ROUTES in
 * contract.ts includes CLIENT_ROUTES. (The prefix is spelled out: this module
 * is imported by contract.ts and must not import values from it.)
 */
const PREFIX = '/api/v1';

export const newCollectionBodySchema = z.strictObject({
  name: shortNameSchema,
  /** Client ids (GUID:…) or names. */
  members: z.array(nameSchema).max(100_000).optional(),
  rules: z.array(ruleSchema).max(1000).optional(),
});
export const collectionSchema = z.object({ name: z.string(), members: z.array(z.string()), rules: z.array(z.string()), createdAt: z.string() });

export const newAdvertisementBodySchema = z.strictObject({
  packageId: packageIdSchema,
  program: shortNameSchema,
  collection: shortNameSchema,
  available: isoTimeSchema.optional(),
  mandatory: isoTimeSchema.optional(),
  expires: isoTimeSchema.optional(),
});
export const advertisementCreatedSchema = z.object({ id: packageIdSchema });
export const advertisementParamsSchema = z.object({ id: packageIdSchema });

export const clientStateViewSchema = z.enum(['targeted', 'received', 'running', 'succeeded', 'failed']);
export const advertisementStatusSchema = z.object({
  targeted: z.number().int(),
  received: z.number().int(),
  running: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  clients: z.array(
    z.object({
      client: z.string(),
      name: z.string(),
      state: clientStateViewSchema,
      exitCode: z.number().int().nullable(),
      updated: z.string().nullable(),
    }),
  ),
});
export type AdvertisementStatusView = z.infer<typeof advertisementStatusSchema>;
export const rerunResultSchema = z.object({ id: packageIdSchema, rerun: z.number().int() });

export const clientViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  site: z.string(),
  boundary: z.string().nullable(),
  ip: z.string().nullable(),
  approved: z.boolean(),
  registeredAt: z.string(),
  lastSeenAt: z.string().nullable(),
});
export const clientListSchema = z.object({ clients: z.array(clientViewSchema) });
export const clientParamsSchema = z.object({ id: nameSchema });
export const clientSettingsSchema = z.strictObject({ requireApproval: z.boolean() });

export const newBoundaryBodySchema = z.strictObject({
  name: shortNameSchema,
  range: z
    .string()
    .max(100)
    .refine((r) => parseIpRange(r) !== undefined, 'a CIDR (10.1.0.0/16) or a range (10.1.0.1-10.1.0.99)'),
  site: siteCodeSchema,
  /** The management point of that site, told to clients found in this boundary. */
  mpUrl: z.url({ protocol: /^https?$/ }).max(2048).optional(),
});
export const boundarySchema = z.object({ name: z.string(), range: z.string(), site: z.string(), mpUrl: z.string().nullable() });

export const CLIENT_ROUTES = {
  createCollection: {
    method: 'POST',
    url: `${PREFIX}/collections`,
    summary: 'Create a collection: direct members and rules (name:<glob>, site:<ABC>, boundary:<name>)',
    access: 'write',
    body: newCollectionBodySchema,
    status: 201,
    response: collectionSchema,
  },
  advertise: {
    method: 'POST',
    url: `${PREFIX}/advertisements`,
    summary: 'Advertise a program of a package to a collection',
    access: 'write',
    body: newAdvertisementBodySchema,
    status: 201,
    response: advertisementCreatedSchema,
  },
  advertisementStatus: {
    method: 'GET',
    url: `${PREFIX}/advertisements/:id/status`,
    summary: "Each targeted client's last state and exit code, and the count per state",
    access: 'read',
    params: advertisementParamsSchema,
    status: 200,
    response: advertisementStatusSchema,
  },
  rerunAdvertisement: {
    method: 'POST',
    url: `${PREFIX}/advertisements/:id/rerun`,
    summary: 'Run the program again on every targeted client, even where it already ran',
    access: 'write',
    params: advertisementParamsSchema,
    status: 200,
    response: rerunResultSchema,
  },
  listClients: { method: 'GET', url: `${PREFIX}/clients`, summary: 'Registered clients', access: 'read', status: 200, response: clientListSchema },
  approveClient: {
    method: 'POST',
    url: `${PREFIX}/clients/:id/approve`,
    summary: 'Approve a client (by id or name) waiting for approval',
    access: 'write',
    params: clientParamsSchema,
    status: 200,
    response: clientViewSchema,
  },
  clientSettings: {
    method: 'POST',
    url: `${PREFIX}/client-settings`,
    summary: 'Whether new clients need approval before they get a policy',
    access: 'write',
    body: clientSettingsSchema,
    status: 200,
    response: clientSettingsSchema,
  },
  addBoundary: {
    method: 'POST',
    url: `${PREFIX}/boundaries`,
    summary: 'Add a boundary: an IP range whose clients belong to a site',
    access: 'write',
    body: newBoundaryBodySchema,
    status: 201,
    response: boundarySchema,
  },
} as const satisfies Record<string, RouteSpec>;
