import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

/**
 * Serves the web console at /console/: plain HTML, CSS and ES modules from
 * src/console/static, read as they are (no bundler, nothing from another
 * host). Only names of the form `name.ext` in that one folder are served, so
 * no URL reaches anything else. The content security policy forbids inline
 * script and any other origin: even text that slipped into the page as HTML
 * could not run.
 */

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
const SAFE_NAME = /^[a-z0-9][a-z0-9-]{0,63}\.(html|js|css|svg)$/;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The static folder in the source tree (this module runs from dist/src/console/). */
export function consoleDir(): string {
  const candidates = [new URL('../../../src/console/static/', import.meta.url), new URL('./static/', import.meta.url)];
  const found = candidates.find((u) => existsSync(fileURLToPath(u)));
  return fileURLToPath(found ?? candidates[0]!);
}

export const consolePlugin: FastifyPluginAsync = async (app) => {
  const dir = consoleDir();
  app.get('/console', async (_request, reply) => reply.redirect('/console/'));
  app.get<{ Params: { file: string } }>('/console/:file', async (request, reply) => {
    const name = request.params.file === '' ? 'index.html' : request.params.file;
    const match = SAFE_NAME.exec(name);
    const body = match === null ? undefined : await readFile(join(dir, name)).catch(() => undefined);
    reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache');
    if (body === undefined || match === null) return reply.code(404).type('text/plain; charset=utf-8').send(`no console file ${name}\n`);
    return reply.type(TYPES[match[1] ?? ''] ?? 'application/octet-stream').send(body);
  });
  app.get('/console/', async (_request, reply) => {
    const body = await readFile(join(dir, 'index.html'));
    return reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache').type(TYPES['html'] ?? '').send(body);
  });
};
