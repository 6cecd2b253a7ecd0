import { z } from 'zod';
import { API_VERSION, type RouteSpec, ROUTES, errorBodySchema } from './contract.js';

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  // Embedded schemas inherit the document's dialect (OpenAPI 3.1 is JSON Schema 2020-12): no $schema of their own.
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  delete json.$schema;
  return json;
}

function parameters(spec: RouteSpec): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
    if (schema === undefined) continue;
    for (const [name, field] of Object.entries(schema.shape)) {
      out.push({ name, in: where, required: where === 'path' || !field.safeParse(undefined).success, schema: schemaOf(field, 'input') });
    }
  }
  return out;
}

const ERROR_STATUSES: Record<string, string> = {
  '400': 'A malformed request: the message names the field',
  '401': 'No bearer token, or one that is not valid (SITECAST_E_UNAUTHORIZED)',
  '403': 'A read-only token on a call that writes (SITECAST_E_FORBIDDEN)',
  '404': 'An unknown package or distribution point (SITECAST_E_NOT_FOUND)',
  '409': 'A conflict: the thing exists already (SITECAST_E_CONFLICT)',
};

function operation(name: string, spec: RouteSpec): Json {
  const errors: Record<string, Json> = {};
  for (const [status, description] of Object.entries(ERROR_STATUSES)) {
    if (spec.access !== 'write' && (status === '403' || status === '409')) continue;
    errors[status] = { $ref: `#/components/responses/E${status}`, description };
  }
  return {
    operationId: name,
    summary: spec.summary,
    ...(spec.access === 'public' ? { security: [] } : {}),
    ...(spec.access === 'write' ? { 'x-sitecast-role': 'admin' } : { 'x-sitecast-role': 'read-only' }),
    ...(parameters(spec).length > 0 ? { parameters: parameters(spec) } : {}),
    ...(spec.body === undefined
      ? {}
      : { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(spec.body, 'input') } } } }),
    responses: {
      [String(spec.status)]: { description: 'Success', content: { 'application/json': { schema: schemaOf(spec.response, 'output') } } },
      ...errors,
    },
  };
}

/**
 * Routes served by the site server's live-status plugin (src/site/live/)
 * rather than the provider's route table: documented here so the one
 * document lists every call the console and scripts use.
 */
const LIVE_ROUTES: { method: 'get' | 'post'; path: string; summary: string; role: 'read-only' | 'admin' | 'public'; type?: string }[] = [
  { method: 'get', path: '/api/v1/events', summary: 'Server-sent events: package, dp-status, status-message, address and backlog changes (bearer token or ?ticket=)', role: 'read-only', type: 'text/event-stream' },
  { method: 'post', path: '/api/v1/events/ticket', summary: 'A signed ticket valid 60 s, for EventSource, which cannot send headers', role: 'read-only' },
  { method: 'get', path: '/api/v1/live/snapshot', summary: 'The current state the event stream changes', role: 'read-only' },
  { method: 'get', path: '/api/v1/live/advertisements', summary: 'Every advertisement with its client results', role: 'read-only' },
  { method: 'get', path: '/api/v1/health', summary: 'Per component: inbox backlog, files in bad/, last error, log tail', role: 'read-only' },
  { method: 'post', path: '/api/v1/packages/{id}/dps/{dp}/validate', summary: "Re-hash a package's share on a DP of this site against its manifest; changes nothing", role: 'admin' },
  { method: 'get', path: '/api/v1/sites/{code}/links', summary: 'Addresses (queue, sending, rate, last error) and inbox backlogs of this site or of a site below it, asked of that site with a signed request', role: 'read-only' },
  { method: 'get', path: '/metrics', summary: 'Prometheus text format, names prefixed sitecast_', role: 'public', type: 'text/plain' },
];

/** The OpenAPI 3.1 document of the admin API, built from the same zod schemas that check requests. */
export function openApiDocument(serverUrl?: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const [name, spec] of Object.entries(ROUTES) as [string, RouteSpec][]) {
    const path = spec.url.replace(/:([A-Za-z]+)/g, '{$1}');
    paths[path] = { ...paths[path], [spec.method.toLowerCase()]: operation(name, spec) };
  }
  for (const r of LIVE_ROUTES) {
    paths[r.path] = {
      ...paths[r.path],
      [r.method]: {
        operationId: `live_${r.method}_${r.path.replace(/[^A-Za-z0-9]+/g, '_')}`,
        summary: r.summary,
        ...(r.role === 'public' ? { security: [] } : { 'x-sitecast-role': r.role }),
        responses: { '200': { description: 'Success', content: { [r.type ?? 'application/json']: {} } } },
      },
    };
  }
  paths['/openapi.json'] = {
    get: { operationId: 'openapi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1 document' } } },
  };
  const responses: Record<string, Json> = {};
  for (const [status, description] of Object.entries(ERROR_STATUSES)) {
    responses[`E${status}`] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sitecast admin API',
      version: API_VERSION,
      description: 'The provider of one Sitecast site. Every call but this document needs `Authorization: Bearer <token>`.',
    },
    ...(serverUrl === undefined ? {} : { servers: [{ url: serverUrl }] }),
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An admin token (`sct_…`); role admin or read-only' } },
      schemas: { Error: schemaOf(errorBodySchema, 'output') },
      responses,
    },
  };
}
