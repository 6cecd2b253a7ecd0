import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode, SitecastError } from '../errors.js';
import { errorBodySchema } from '../components/provider/contract.js';
import { loadSiteConfig } from '../site/config.js';
import { sitePaths } from '../site/layout.js';
import { redact, usage } from './output.js';

/** How a command names the site it talks to. */
export interface SiteFlags {
  root?: string;
  url?: string;
  token?: string;
}

export interface SiteTarget {
  url: string;
  token: string;
  /** Set when the URL came from a site root: named in the "not running" hint. */
  root?: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

const urlSchema = z.url({ protocol: /^https?$/ }).max(2048);
const tokenSchema = z.string().regex(/^\S{1,512}$/, 'a token is one word');
const REQUEST_TIMEOUT_MS = 30_000;

function checkUrl(text: string, from: string): string {
  const result = urlSchema.safeParse(text.trim());
  if (!result.success) throw usage(`${from}: ${JSON.stringify(text.trim())} is not an http(s) URL`);
  return result.data.replace(/\/+$/, '');
}

function checkToken(text: string, from: string): string {
  const result = tokenSchema.safeParse(text.trim());
  // The value is not shown: it is meant to be a secret.
  if (!result.success) throw usage(`${from} is not a token (empty, or more than one word)`);
  return result.data;
}

/** A wildcard listen address is not somewhere to connect to; the same machine is. */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

async function urlFromRoot(root: string): Promise<string> {
  try {
    // Written by the running server with the port it really got.
    const path = sitePaths(root).siteUrl;
    return checkUrl(await readFile(path, 'utf8'), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const config = await loadSiteConfig(root);
  return `http://${connectHost(config.listen.host)}:${config.listen.port}`;
}

async function tokenFromRoot(root: string): Promise<string> {
  const path = sitePaths(root).adminToken;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new SitecastError('SITECAST_E_SITE_CONFIG', `cannot read the admin token ${path} (${code})`, {
      hint: 'pass --token <token> or set SITECAST_TOKEN',
      cause: err,
    });
  }
  return checkToken(text, path);
}

/**
 * Which site to talk to, and with which token: each from the first of the
 * flags (`--url`, `--token`), the environment (SITECAST_URL, SITECAST_TOKEN),
 * the site root (`--root`: its site.url or site.json, and admin.token).
 */
export async function resolveTarget(flags: SiteFlags, env: Env): Promise<SiteTarget> {
  const envUrl = env.SITECAST_URL === '' ? undefined : env.SITECAST_URL;
  const envToken = env.SITECAST_TOKEN === '' ? undefined : env.SITECAST_TOKEN;
  const url =
    flags.url !== undefined
      ? checkUrl(flags.url, '--url')
      : envUrl !== undefined
        ? checkUrl(envUrl, 'SITECAST_URL')
        : flags.root !== undefined
          ? await urlFromRoot(flags.root)
          : undefined;
  const token =
    flags.token !== undefined
      ? checkToken(flags.token, '--token')
      : envToken !== undefined
        ? checkToken(envToken, 'SITECAST_TOKEN')
        : flags.root !== undefined
          ? await tokenFromRoot(flags.root)
          : undefined;
  if (url === undefined || token === undefined) {
    throw usage(`which site? give --root <root>, or --url <url> and --token <token> (or set SITECAST_URL and SITECAST_TOKEN)`);
  }
  const fromRoot = flags.url === undefined && envUrl === undefined && flags.root !== undefined;
  return { url, token, ...(fromRoot && flags.root !== undefined ? { root: flags.root } : {}) };
}

function isKnownCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

function siteDown(target: SiteTarget, err: unknown): SitecastError {
  const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
  if (timedOut) {
    return new SitecastError('SITECAST_E_SITE_DOWN', `the site at ${target.url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`, {
      hint: 'the site server may be overloaded or stuck; see its logs/',
      cause: err,
    });
  }
  const root = target.root ?? '<root>';
  return new SitecastError('SITECAST_E_SITE_DOWN', `no site answers at ${target.url}; is \`sitecast site start ${root}\` running?`, {
    hint: 'start the site server, or check --url / SITECAST_URL',
    cause: err,
  });
}

/** A provider error becomes the same SitecastError here: its code, message and hint survive the trip. */
function answerError(target: SiteTarget, status: number, payload: unknown): SitecastError {
  const parsed = errorBodySchema.safeParse(payload);
  if (!parsed.success) {
    return new SitecastError('SITECAST_E_HTTP', `${target.url} answered HTTP ${status} without a Sitecast error`, {
      hint: 'check that the URL points at a Sitecast site server',
    });
  }
  const { code, message, hint } = parsed.data.error;
  const options = hint === undefined ? {} : { hint: redact(hint) };
  if (isKnownCode(code)) return new SitecastError(code, redact(message), options);
  return new SitecastError('SITECAST_E_HTTP', `the site answered HTTP ${status} ${code}: ${redact(message)}`, options);
}

/** Calls the admin API. The answer is parsed with the contract's schema before anyone uses it. */
export async function callSite<S extends z.ZodType>(
  target: SiteTarget,
  request: { method: 'GET' | 'POST' | 'PUT'; path: string; body?: unknown },
  schema: S,
): Promise<z.output<S>> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${request.path}`, {
      method: request.method,
      headers: {
        authorization: `Bearer ${target.token}`,
        accept: 'application/json',
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw siteDown(target, err);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(await res.text());
  } catch (err) {
    throw new SitecastError('SITECAST_E_HTTP', `${target.url} answered HTTP ${res.status} with something that is not JSON`, {
      hint: 'check that the URL points at a Sitecast site server',
      cause: err,
    });
  }
  if (!res.ok) throw answerError(target, res.status, payload);
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new SitecastError('SITECAST_E_HTTP', `${target.url}${request.path} answered in a shape this CLI does not know`, {
      hint: 'the site server and the CLI may be different versions',
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/** Adds the three ways of naming a site to an admin command. */
export function withSiteFlags(command: Command): Command {
  return command
    .option('--root <root>', 'site root on this machine (its site.url or site.json, and admin.token)')
    .option('--url <url>', 'base URL of the site server (default: SITECAST_URL, else from --root)')
    .option('--token <token>', 'admin API token (default: SITECAST_TOKEN, else <root>/admin.token)');
}

/** A repeatable flag's values, in the order given (commander's option argument parser). */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Checks flag values with the API's own schema, so a bad one is a usage error (exit 2) before any request. */
export function checkFlags<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`);
  throw usage(`${what}: ${issues.join('; ')}`);
}
