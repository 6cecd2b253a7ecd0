import { z } from 'zod';
import {
  absolutePathSchema,
  commandLineSchema,
  componentSchema,
  dpStateSchema,
  isoTimeSchema,
  nameSchema,
  packageFilePathSchema,
  roleSchema,
  packageIdSchema,
  prioritySchema,
  severitySchema,
  shortNameSchema,
  siteCodeSchema,
} from '../../db/values.js';
import { ADDRESS_ROUTES } from './addresses-contract.js';
import { CLIENT_ROUTES } from './clients-contract.js';

/**
 * The admin API contract, version 1: the shape of every request and answer.
 * The provider parses requests with these schemas, the CLI parses answers
 * with them, and the OpenAPI document is generated from them, so the three
 * cannot drift apart. Zod only: importing this pulls in no server code.
 */

export const API_PREFIX = '/api/v1';
/** Version of this contract, as the OpenAPI document states it. */
export const API_VERSION = '1.0.0';

/** `SITE/dp`, the way an administrator names a distribution point anywhere in the hierarchy. */
export const dpRefSchema = z
  .string()
  .regex(/^[A-Z0-9]{3}\/[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/, 'name a DP as SITE/dp, e.g. CEN/dp1')
  .refine((s) => !s.includes('..'), 'must not contain ".."');

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().regex(/^SITECAST_E_[A-Z_]+$/),
    message: z.string(),
    hint: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** `keyFingerprint`: the site key as `sha256:<hex>`, for clients to pin (`client register --site-key`); absent for a site without a key. */
export const siteInfoSchema = z.object({ code: siteCodeSchema, name: z.string(), url: z.string(), keyFingerprint: z.string().optional() });

/** `site` names a site below this one (the definition travels down and that site creates the DP); default this site. */
export const newDpBodySchema = z.strictObject({ name: shortNameSchema, path: absolutePathSchema, site: siteCodeSchema.optional() });
export const dpSchema = z.object({
  site: siteCodeSchema,
  name: z.string(),
  path: z.string(),
  /** Where clients download from, when the DP is served over HTTP. */
  url: z.string().optional(),
});
export const dpListSchema = z.object({ dps: z.array(dpSchema) });
/** `site` names a site below this one: the request travels down and that site removes the DP; default this site. */
export const removeDpBodySchema = z.strictObject({ site: siteCodeSchema.optional() });
/** `removed`: gone from this site; `requested`: sent down to the site it belongs to, which removes it and reports back. */
export const removeDpResultSchema = dpSchema.extend({ state: z.enum(['removed', 'requested']) });

const programInputSchema = z.strictObject({
  name: shortNameSchema,
  commandLine: commandLineSchema,
  maxRunTimeSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .optional(),
});
export const newPackageBodySchema = z.strictObject({
  name: nameSchema,
  sourcePath: absolutePathSchema,
  version: z.string().max(64).optional(),
  priority: prioritySchema.optional(),
  programs: z.array(programInputSchema).max(64).optional(),
  /** An `.ICO` file inside the source folder (e.g. `setup.ico`): the package's icon, read from each source version. */
  icon: packageFilePathSchema.optional(),
});
export type NewPackageBody = z.infer<typeof newPackageBodySchema>;
export const createdSchema = z.object({ id: packageIdSchema });

export const programSchema = z.object({ name: z.string(), commandLine: z.string(), maxRunTimeSeconds: z.number().int() });
export const packageSchema = z.object({
  id: packageIdSchema,
  name: z.string(),
  version: z.string(),
  sourcePath: z.string(),
  priority: prioritySchema,
  sourceVersion: z.number().int(),
  manifestSha256: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  programs: z.array(programSchema),
  /** Present when the package has an icon of its own (a file in its source folder). */
  icon: z.string().optional(),
});
export type PackageView = z.infer<typeof packageSchema>;
export const packageListSchema = z.object({ packages: z.array(packageSchema) });

export const packageParamsSchema = z.object({ id: packageIdSchema });

export const distributeBodySchema = z.strictObject({ dps: z.array(dpRefSchema).min(1).max(10_000) });
export const targetSchema = z.object({ site: siteCodeSchema, dp: z.string() });
export const tokenViewSchema = z.object({ id: z.string(), role: roleSchema, label: z.string().nullable(), createdAt: z.string() });
export const newTokenBodySchema = z.strictObject({ role: roleSchema, label: nameSchema.optional() });
export const issuedTokenSchema = tokenViewSchema.extend({ token: z.string() });
export const tokenListSchema = z.object({ tokens: z.array(tokenViewSchema) });
export const tokenParamsSchema = z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'a token id is 12 hex digits (sitecast token list shows them)') });
export const revokedTokenSchema = z.object({ id: z.string(), revoked: z.literal(true) });
export const packageDpParamsSchema = z.object({ id: packageIdSchema, dp: shortNameSchema });
export const dpParamsSchema = z.object({ name: shortNameSchema });
export const redistributeResultSchema = z.object({ id: packageIdSchema, site: siteCodeSchema, dp: z.string(), requestedAt: z.string() });
export const distributeResultSchema = z.object({ id: packageIdSchema, targets: z.array(targetSchema) });

export const updateResultSchema = z.object({ id: packageIdSchema, sourceVersion: z.number().int() });

export const dpStatusSchema = z.object({
  site: siteCodeSchema,
  dp: z.string(),
  state: dpStateSchema,
  sourceVersion: z.number().int(),
  retryCount: z.number().int().optional(),
  nextAttempt: z.string().optional(),
  lastMessage: z.string().optional(),
});
export type DpStatusView = z.infer<typeof dpStatusSchema>;
export const packageStatusSchema = z.object({
  id: packageIdSchema,
  sourceVersion: z.number().int(),
  /** Present when the source folder of this source version could not be used: the package is failed, whatever its DPs say. */
  sourceProblem: z.string().optional(),
  dps: z.array(dpStatusSchema),
});
export type PackageStatusView = z.infer<typeof packageStatusSchema>;
const countSchema = z.number().int().min(0);
export const packageStateCountsSchema = z.object({ id: packageIdSchema, pending: countSchema, installed: countSchema, retrying: countSchema, failed: countSchema });
/** The hierarchy summary: how many DPs hold each package in each state, every package with a DP status. */
export const packageSummarySchema = z.object({ packages: z.array(packageStateCountsSchema) });
export type PackageSummaryView = z.infer<typeof packageSummarySchema>;

export const messagesQuerySchema = z.strictObject({
  component: componentSchema.optional(),
  package: packageIdSchema.optional(),
  site: siteCodeSchema.optional(),
  /** This severity and worse. */
  severity: severitySchema.optional(),
  since: isoTimeSchema.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});
export type MessagesQuery = z.infer<typeof messagesQuerySchema>;
export const statusMessageSchema = z.object({
  id: z.number().int(),
  time: z.string(),
  severity: severitySchema,
  component: z.string(),
  site: z.string(),
  packageId: z.string().nullable(),
  text: z.string(),
});
export type StatusMessageView = z.infer<typeof statusMessageSchema>;
export const messageListSchema = z.object({ messages: z.array(statusMessageSchema) });

export const inviteBodySchema = z.strictObject({
  child: siteCodeSchema,
  /** How long the token may be used (default 24 h). */
  expiresInSeconds: z.number().int().min(1).max(30 * 24 * 3600).optional(),
});
export const inviteResultSchema = z.object({ token: z.string(), child: siteCodeSchema, expiresAt: z.string() });

const pemSchema = z.string().min(1).max(4096);
const httpUrlSchema = z.url({ protocol: /^https?$/ }).max(2048);
export const joinBodySchema = z.strictObject({
  code: siteCodeSchema,
  name: nameSchema,
  url: httpUrlSchema,
  publicKey: pemSchema,
  token: z.string().min(1).max(200),
});
export const siteDefinitionSchema = z.object({
  code: siteCodeSchema,
  name: z.string(),
  parentCode: siteCodeSchema.nullable(),
  publicKey: z.string().nullable(),
  url: z.string().nullable(),
});
/** The parent answers with itself first, then its ancestors up to the central site. */
export const joinResultSchema = z.object({ parent: siteDefinitionSchema, ancestors: z.array(siteDefinitionSchema) });
export const siteListSchema = z.object({ sites: z.array(siteDefinitionSchema.extend({ isLocal: z.boolean() })) });

/** Who may call a route: any valid token, or only an `admin` one. */
export type Access = 'public' | 'read' | 'write';

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT';
  /** Fastify syntax (`:id`); the OpenAPI document uses `{id}`. */
  url: string;
  summary: string;
  access: Access;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  status: 200 | 201 | 202;
  response: z.ZodType;
}

/** Every route of the admin API. The provider registers exactly these; the OpenAPI document lists exactly these. */
export const ROUTES = {
  getSite: { method: 'GET', url: `${API_PREFIX}/site`, summary: 'The site this server runs', access: 'read', status: 200, response: siteInfoSchema },
  addDp: {
    method: 'POST',
    url: `${API_PREFIX}/dps`,
    summary: 'Add a distribution point of this site, or of a site below it',
    access: 'write',
    body: newDpBodySchema,
    status: 201,
    response: dpSchema,
  },
  listSites: { method: 'GET', url: `${API_PREFIX}/sites`, summary: 'Every site of the hierarchy known here', access: 'read', status: 200, response: siteListSchema },
  invite: {
    method: 'POST',
    url: `${API_PREFIX}/site/invitations`,
    summary: 'Issue a one-time join token for a child site code',
    access: 'write',
    body: inviteBodySchema,
    status: 201,
    response: inviteResultSchema,
  },
  join: {
    method: 'POST',
    url: '/site/v1/join',
    summary: 'A new child site registers with its join token and public key (no bearer token)',
    access: 'public',
    body: joinBodySchema,
    status: 200,
    response: joinResultSchema,
  },
  listDps: { method: 'GET', url: `${API_PREFIX}/dps`, summary: 'Distribution points of every known site', access: 'read', status: 200, response: dpListSchema },
  removeDp: {
    method: 'POST',
    url: `${API_PREFIX}/dps/:name/remove`,
    summary: 'Remove a distribution point no package is on any more (409 while one is, or is still being taken off): of this site at once, or (body site) of a site below, which is asked to; its folder is left as it is',
    access: 'write',
    params: dpParamsSchema,
    body: removeDpBodySchema,
    status: 200,
    response: removeDpResultSchema,
  },
  createPackage: {
    method: 'POST',
    url: `${API_PREFIX}/packages`,
    summary: 'Create a package from a source folder on the site server',
    access: 'write',
    body: newPackageBodySchema,
    status: 201,
    response: createdSchema,
  },
  listPackages: { method: 'GET', url: `${API_PREFIX}/packages`, summary: 'Every package of this site', access: 'read', status: 200, response: packageListSchema },
  getPackage: {
    method: 'GET',
    url: `${API_PREFIX}/packages/:id`,
    summary: 'One package with its programs',
    access: 'read',
    params: packageParamsSchema,
    status: 200,
    response: packageSchema,
  },
  distribute: {
    method: 'POST',
    url: `${API_PREFIX}/packages/:id/distribute`,
    summary: 'Target more distribution points (SITE/dp); answers every target of the package',
    access: 'write',
    params: packageParamsSchema,
    body: distributeBodySchema,
    status: 200,
    response: distributeResultSchema,
  },
  undistribute: {
    method: 'POST',
    url: `${API_PREFIX}/packages/:id/undistribute`,
    summary: 'Take a package made at this site off distribution points of this site or of sites below (SITE/dp): each site removes its share and its chunks from its own DPs; answers the remaining targets',
    access: 'write',
    params: packageParamsSchema,
    body: distributeBodySchema,
    status: 200,
    response: distributeResultSchema,
  },
  updatePackage: {
    method: 'POST',
    url: `${API_PREFIX}/packages/:id/update`,
    summary: 'Re-read the source folder: starts a new source version on every DP',
    access: 'write',
    params: packageParamsSchema,
    status: 200,
    response: updateResultSchema,
  },
  createToken: {
    method: 'POST',
    url: `${API_PREFIX}/tokens`,
    summary: 'Issue a bearer token with a role (admin or read-only); the secret is in this answer only',
    access: 'write',
    body: newTokenBodySchema,
    status: 201,
    response: issuedTokenSchema,
  },
  listTokens: { method: 'GET', url: `${API_PREFIX}/tokens`, summary: 'Every token: id, role, label, creation time (never the secret)', access: 'write', status: 200, response: tokenListSchema },
  revokeToken: {
    method: 'POST',
    url: `${API_PREFIX}/tokens/:id/revoke`,
    summary: 'Revoke a token at once; the last admin token cannot be revoked',
    access: 'write',
    params: tokenParamsSchema,
    status: 200,
    response: revokedTokenSchema,
  },
  redistribute: {
    method: 'POST',
    url: `${API_PREFIX}/packages/:id/dps/:dp/redistribute`,
    summary: "Copy a package onto one DP of this site again: its library chunks re-checked, its share rebuilt from them and switched in",
    access: 'write',
    params: packageDpParamsSchema,
    status: 202,
    response: redistributeResultSchema,
  },
  packageStatus: {
    method: 'GET',
    url: `${API_PREFIX}/packages/:id/status`,
    summary: 'Where the package stands on each targeted DP',
    access: 'read',
    params: packageParamsSchema,
    status: 200,
    response: packageStatusSchema,
  },
  packageSummary: {
    method: 'GET',
    url: `${API_PREFIX}/package-status`,
    summary: 'State counts on DPs for every package (the hierarchy summary)',
    access: 'read',
    status: 200,
    response: packageSummarySchema,
  },
  statusMessages: {
    method: 'GET',
    url: `${API_PREFIX}/status-messages`,
    summary: 'Status messages, newest first',
    access: 'read',
    query: messagesQuerySchema,
    status: 200,
    response: messageListSchema,
  },
  ...CLIENT_ROUTES,
  ...ADDRESS_ROUTES,
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof ROUTES;
