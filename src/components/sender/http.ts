import { Agent, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { SitecastError } from '../../errors.js';
import { HEADER_FILE_SHA256, sha256Hex, signRequest } from './auth.js';
import { RECEIVE_PREFIX } from './receive.js';
import type { ProgressFn, Sender, SenderDeps } from './sender.js';
import { sliceSize } from './throttle.js';
import type { SendRequest } from '../../formats/srq.js';

/**
 * The http sender: uploads to the target's receive endpoint in parts
 * (1 MiB by default), each a signed PUT with a Content-Range. It first asks
 * how many bytes the target holds and goes on from there, so a link cut in
 * the middle of a part costs that part and nothing more.
 */
export const DEFAULT_PART_BYTES = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;

const stateSchema = z.object({ received: z.number().int().nonnegative(), total: z.number().int().nullable(), complete: z.boolean() });

/** A failure to reach or talk to the target; `unreachable` when no connection could be made at all. */
export class SendError extends SitecastError {
  constructor(
    message: string,
    readonly unreachable: boolean,
    cause?: unknown,
  ) {
    super('SITECAST_E_SEND', message, cause === undefined ? {} : { cause });
  }
}

interface Answer {
  status: number;
  body: unknown;
}

export function createHttpSender(deps: SenderDeps): Sender {
  const base = deps.target.url;
  const partBytes = deps.partBytes ?? DEFAULT_PART_BYTES;
  return {
    kind: 'http',
    async send(req, file, progress, signal) {
      if (base === null) throw new SitecastError('SITECAST_E_SEND', `site ${req.to} has no known URL; it is learnt when the site joins`);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const wire = new WireCounter(progress, req.bytes);
      try {
        await upload({ deps, base, req, file, partBytes, agent, wire, signal });
      } finally {
        agent.destroy();
      }
    },
  };
}

/** Counts what each socket really wrote, so bytesSent includes headers, framing and parts cut short. */
class WireCounter {
  private readonly seen = new WeakMap<Socket, number>();
  sent = 0;
  constructor(
    private readonly progress: ProgressFn,
    private readonly total: number,
  ) {}
  report(socket: Socket | undefined | null, sent: number): void {
    this.sent = sent;
    let delta = 0;
    if (socket) {
      const before = this.seen.get(socket) ?? 0;
      delta = Math.max(0, socket.bytesWritten - before);
      this.seen.set(socket, socket.bytesWritten);
    }
    this.progress({ sent, total: this.total, wireBytes: delta });
  }
}

interface UploadArgs {
  deps: SenderDeps;
  base: string;
  req: SendRequest;
  file: string;
  partBytes: number;
  agent: Agent;
  wire: WireCounter;
  signal: AbortSignal;
}

async function upload(a: UploadArgs): Promise<void> {
  const { req } = a;
  const path = `${RECEIVE_PREFIX}/${encodeURIComponent(req.id)}`;
  const first = stateSchema.parse((await call(a, 'GET', path, undefined, '')).body);
  if (first.complete) return a.wire.report(null, req.bytes);
  let offset = first.total === req.bytes ? first.received : 0;
  a.wire.report(null, offset);
  const handle = await open(a.file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size !== req.bytes) throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${a.file} holds ${size} bytes, the request says ${req.bytes}`);
    for (let rounds = 0; ; rounds++) {
      if (rounds > 2 * Math.ceil(req.bytes / a.partBytes) + 10) throw new SendError(`the upload of ${req.id} makes no progress`, false);
      const end = Math.min(req.bytes, offset + a.partBytes);
      const body = Buffer.alloc(end - offset);
      if (body.length > 0) await handle.read(body, 0, body.length, offset);
      const range = req.bytes === 0 ? 'bytes */0' : `bytes ${offset}-${end - 1}/${req.bytes}`;
      const res = await call(a, 'PUT', path, body, range, offset);
      if (res.status !== 200 && res.status !== 409) throw new SendError(`${req.to} refused part ${range} of ${req.id}: HTTP ${res.status} ${describe(res.body)}`, false);
      const s = stateSchema.parse(res.body);
      if (s.complete) return a.wire.report(null, req.bytes);
      offset = s.received;
      a.wire.report(null, offset);
    }
  } finally {
    await handle.close();
  }
}

function describe(body: unknown): string {
  const parsed = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).safeParse(body);
  return parsed.success ? `${parsed.data.error.code}: ${parsed.data.error.message}` : '';
}

/** One signed request; the body goes out in throttled slices. */
function call(a: UploadArgs, method: 'GET' | 'PUT', path: string, body: Buffer | undefined, range: string, offset = 0): Promise<Answer> {
  const { deps, req } = a;
  const payload = body ?? Buffer.alloc(0);
  const headers: Record<string, string> = {
    ...signRequest(deps.keys.privateKey, { method, path, from: deps.from, to: req.to, range, fileSha256: req.sha256, bodySha256: sha256Hex(payload) }),
    [HEADER_FILE_SHA256]: req.sha256,
    accept: 'application/json',
  };
  if (method === 'PUT') {
    headers['content-type'] = 'application/octet-stream';
    headers['content-range'] = range;
    headers['content-length'] = String(payload.length);
  }
  const url = new URL(path, a.base);
  const make = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Answer>((resolve, reject) => {
    let connected = false;
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      a.wire.report(r.socket, a.wire.sent);
      if (a.signal.aborted) return reject(a.signal.reason instanceof Error ? a.signal.reason : new Error('aborted'));
      const e = err as NodeJS.ErrnoException;
      reject(new SendError(`cannot send to ${req.to} at ${a.base}: ${e.code ?? e.message}`, !connected, err));
    };
    const r = make(url, { method, headers, agent: url.protocol === 'https:' ? undefined : a.agent, signal: a.signal, timeout: CONNECT_TIMEOUT_MS });
    r.on('timeout', () => r.destroy(Object.assign(new Error(connected ? 'the target stopped answering' : 'connection timed out'), { code: 'ETIMEDOUT' })));
    r.on('error', fail);
    r.on('socket', (socket: Socket) => {
      const ready = (): void => {
        connected = true;
        r.setTimeout(IDLE_TIMEOUT_MS);
      };
      if (socket.connecting) socket.once('connect', ready);
      else ready();
    });
    r.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        a.wire.report(r.socket, a.wire.sent);
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = undefined;
        }
        if (res.statusCode === 401) return reject(new SendError(`${req.to} refused this site's signature: ${describe(parsed)}`, false));
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    void writeBody(a, r, payload, offset).catch((err: unknown) => r.destroy(err as Error));
  });
}

async function writeBody(a: UploadArgs, r: ReturnType<typeof httpRequest>, payload: Buffer, offset: number): Promise<void> {
  const slice = sliceSize(a.deps.limit());
  for (let at = 0; at < payload.length; at += slice) {
    const piece = payload.subarray(at, Math.min(payload.length, at + slice));
    await a.deps.throttle.take(piece.length, a.signal);
    if (r.destroyed) return;
    const ok = r.write(piece);
    a.wire.report(r.socket, offset + at + piece.length);
    if (!ok) await drained(r);
  }
  r.end();
}

/** Resolves when the request can take more, or is closed; both listeners go either way (one pair per slice would pile up on a large part). */
function drained(r: ReturnType<typeof httpRequest>): Promise<void> {
  return new Promise<void>((res) => {
    const done = (): void => {
      r.off('drain', done);
      r.off('close', done);
      res();
    };
    r.once('drain', done);
    r.once('close', done);
  });
}
