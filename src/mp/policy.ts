import { createPublicKey } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { getAdvertisement, setAdvertisementStatus } from '../db/advertisements.js';
import { getRequireApproval, registerClient, touchClients } from '../db/clients.js';
import { addStatusMessage } from '../db/index.js';
import { readManifestBytes } from '../content/library.js';
import { SitecastError, isSitecastError } from '../errors.js';
import {
  HEADER_SIGNATURE,
  HEADER_TIME,
  MAX_SKEW_MS,
  type RegisterAnswer,
  registerRequestSchema,
  registerSigningText,
  signText,
  statusReportSchema,
  verifyText,
} from '../formats/client-protocol.js';
import type { SiteContext } from '../site/context.js';
import { errorResponse, statusOf } from '../components/provider/http-errors.js';
import { authenticateClient } from './client-auth.js';
import { PolicyCache } from './policy-cache.js';

export interface PolicyOptions {
  ctx: SiteContext;
  /** What clients are told to use as their poll interval (default 60 s). */
  pollSeconds?: number;
}

/** Last-seen times are soft state: one transaction (one fsync) a minute at most, so the database never paces policy answers. */
const SEEN_FLUSH_MS = 60_000;
const SEEN_EVERY_MS = 60_000;
const MANIFEST_ID = /^[0-9a-f]{64}$/;

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  if (isSitecastError(err, 'SITECAST_E_BAD_SIGNATURE')) {
    return reply.code(401).send({ error: { code: err.code, message: err.message, ...(err.hint === undefined ? {} : { hint: err.hint }) } });
  }
  const { status, body } = errorResponse(err);
  return reply.code(isSitecastError(err) ? statusOf(err.code) : status).send(body);
}

function parseJson(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `${what}: not JSON`);
  }
}

function parseWith<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.map(String).join('.') || 'value'}: ${i.message}`).join('; ');
  throw new SitecastError('SITECAST_E_INVALID_VALUE', `${what}: ${issues}`);
}

/**
 * The management point's client side (registration, policy, status,
 * manifests), beside `mpPlugin`'s instruction files. Register it without
 * fastify-plugin: its JSON parser (raw bytes, so signatures cover exactly what
 * was sent) stays inside this plugin. Protocol: src/formats/client-protocol.ts.
 */
export async function policyPlugin(app: FastifyInstance, options: PolicyOptions): Promise<void> {
  const { ctx } = options;
  const log = ctx.logger('mp');
  const pollSeconds = options.pollSeconds ?? 60;
  const cache = new PolicyCache(ctx.db, ctx.paths.mpPkginfo);
  const seen = new Map<string, { time: string; ip: string; boundary: string | null }>();
  const recorded = new Map<string, number>();
  let boundaryChanged = false;
  let flushing: Promise<void> = Promise.resolve();
  const flushSeen = (): Promise<void> => {
    if (seen.size === 0) return flushing;
    const entries = [...seen];
    seen.clear();
    const moved = boundaryChanged;
    boundaryChanged = false;
    flushing = flushing
      .then(() => touchClients(ctx.db, new Map(entries), moved))
      .catch((err: unknown) => log.error('cannot record when clients were last seen', err));
    return flushing;
  };
  const noteSeen = (client: { id: string; boundary: string | null }, ip: string, boundary: string | null): void => {
    const now = Date.now();
    const changed = boundary !== client.boundary;
    if (!changed && now - (recorded.get(client.id) ?? 0) < SEEN_EVERY_MS) return;
    if (changed) boundaryChanged = true;
    recorded.set(client.id, now);
    seen.set(client.id, { time: new Date(now).toISOString(), ip, boundary });
  };
  const timer = setInterval(() => void flushSeen(), SEEN_FLUSH_MS);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await flushSeen();
  });

  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  app.post('/mp/v1/register', async (request, reply) => {
    try {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const req = parseWith(registerRequestSchema, parseJson(raw, 'registration'), 'registration');
      if (Math.abs(Date.now() - Date.parse(req.time)) > MAX_SKEW_MS) {
        throw new SitecastError('SITECAST_E_BAD_SIGNATURE', 'the registration time is more than 5 minutes from the management point\'s clock');
      }
      let key;
      try {
        key = createPublicKey(req.publicKey);
      } catch {
        throw new SitecastError('SITECAST_E_INVALID_VALUE', 'publicKey: not a public key');
      }
      if (key.asymmetricKeyType !== 'ed25519') throw new SitecastError('SITECAST_E_INVALID_VALUE', 'publicKey: not an Ed25519 key');
      if (!verifyText(key, registerSigningText(req.name, req.publicKey, req.time), req.proof)) {
        throw new SitecastError('SITECAST_E_BAD_SIGNATURE', 'the registration is not signed by the key it names');
      }
      const boundary = await cache.boundaryOf(request.ip);
      if (boundary !== undefined && boundary.site !== ctx.siteCode) {
        log.info(`client ${JSON.stringify(req.name)} at ${request.ip} belongs to boundary ${boundary.name} of site ${boundary.site}: sent there`);
        const answer: RegisterAnswer = { status: 'moved', site: boundary.site, mp: boundary.mpUrl };
        return reply.code(200).send(answer);
      }
      const approved = !(await getRequireApproval(ctx.db));
      const client = await registerClient(ctx.db, {
        name: req.name,
        publicKey: req.publicKey,
        site: ctx.siteCode,
        boundary: boundary?.name ?? null,
        ip: request.ip,
        approved,
      });
      cache.invalidate();
      log.info(`client ${client.id} ${JSON.stringify(client.name)} registered from ${request.ip}${client.approved ? '' : ' (waiting for approval)'}`);
      const answer: RegisterAnswer = {
        status: 'registered',
        clientId: client.id,
        site: ctx.siteCode,
        siteKey: ctx.keys.publicKeyPem,
        approved: client.approved,
        pollSeconds,
      };
      return reply.code(201).send(answer);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get('/mp/v1/policy', async (request, reply) => {
    try {
      const { client } = await authenticateClient(cache, request, '');
      if (!client.approved) {
        throw new SitecastError('SITECAST_E_FORBIDDEN', `client ${client.id} is waiting for approval`, {
          hint: 'an administrator approves it with `sitecast client approve`',
        });
      }
      const boundary = await cache.boundaryOf(request.ip);
      noteSeen(client, request.ip, boundary?.site === ctx.siteCode ? boundary.name : null);
      const moved = boundary !== undefined && boundary.site !== ctx.siteCode ? { site: boundary.site, mp: boundary.mpUrl } : null;
      const now = new Date().toISOString();
      const ads = (await cache.advertisementsOf(client)).filter((a) => a.available <= now && (a.expires === null || a.expires > now));
      const parts: string[] = [];
      for (const id of new Set(ads.map((a) => a.packageId))) {
        const fragment = await cache.packageFragment(id);
        if (fragment !== null) parts.push(`${JSON.stringify(id)}:${fragment}`);
      }
      const head = {
        format: 1,
        site: ctx.siteCode,
        client: client.id,
        requestTime: String(request.headers[HEADER_TIME]),
        issued: now,
        pollSeconds,
        moved,
        advertisements: ads,
      };
      const body = `${JSON.stringify(head).slice(0, -1)},"packages":{${parts.join(',')}}}`;
      reply.header(HEADER_SIGNATURE, signText(ctx.keys.privateKey, body));
      reply.header('content-type', 'application/json');
      reply.header('cache-control', 'no-store');
      return reply.code(200).send(body);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string } }>('/mp/v1/manifests/:id', async (request, reply) => {
    try {
      await authenticateClient(cache, request, '');
      const { id } = request.params;
      if (!MANIFEST_ID.test(id)) throw new SitecastError('SITECAST_E_NOT_FOUND', 'no such manifest');
      let data: Buffer;
      try {
        data = await readManifestBytes({ dir: ctx.paths.library }, id);
      } catch {
        throw new SitecastError('SITECAST_E_NOT_FOUND', `manifest ${id} is not at this site`);
      }
      reply.header('content-type', 'application/json');
      reply.header('cache-control', 'public, max-age=31536000, immutable');
      return reply.code(200).send(data);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.post('/mp/v1/status', async (request, reply) => {
    try {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const { client } = await authenticateClient(cache, request, raw);
      const report = parseWith(statusReportSchema, parseJson(raw, 'status report'), 'status report');
      const who = `client ${client.name} (${client.id})`;
      if (report.type === 'dp') {
        const text = `${who} could not use DP ${report.site}/${report.dp} for package ${report.packageId}: ${report.problem}`;
        log.warn(text);
        await addStatusMessage(ctx.db, { severity: 'warning', component: 'mp', site: ctx.siteCode, packageId: report.packageId, text });
        return reply.code(200).send({ recorded: true });
      }
      const ad = await getAdvertisement(ctx.db, report.advertisement);
      if (ad === undefined || ad.packageId !== report.packageId) {
        throw new SitecastError('SITECAST_E_NOT_FOUND', `advertisement ${report.advertisement} of package ${report.packageId} does not exist`);
      }
      const recorded = await setAdvertisementStatus(ctx.db, {
        advertisementId: ad.id,
        clientId: client.id,
        state: report.state,
        exitCode: report.exitCode,
        rerun: report.rerun,
        message: report.message,
      });
      if (recorded && (report.state === 'succeeded' || report.state === 'failed')) {
        const exit = report.exitCode === null ? 'no exit code' : `exit code ${report.exitCode}`;
        const text = `${who}: advertisement ${ad.id}, program ${ad.program} of ${ad.packageId} ${report.state} (${exit})${report.message === null ? '' : `: ${report.message}`}`;
        await addStatusMessage(ctx.db, {
          severity: report.state === 'succeeded' ? 'info' : 'error',
          component: 'mp',
          site: ctx.siteCode,
          packageId: ad.packageId,
          text,
        });
      }
      return reply.code(200).send({ recorded });
    } catch (err) {
      return fail(reply, err);
    }
  });
}
