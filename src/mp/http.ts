import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INSTRUCTION_NAME } from '../formats/instructions.js';

export interface MpHttpOptions {
  /** `<root>/mp/pkginfo`, where Inbox Manager puts the instruction files. */
  pkginfoDir: string;
}

const CONTENT_TYPE = { PKG: 'application/json', NAL: 'application/json', ICO: 'image/x-icon' } as const;

/**
 * The management point's client endpoint for instruction files:
 *
 *   GET /mp/v1/pkginfo/<PKGID>.PKG | .NAL | .ICO
 *
 * Only names of that shape are looked up; anything else, or a file not there
 * (yet), is 404. The files are small and replaced atomically by Inbox
 * Manager, so each is read whole.
 */
export async function mpPlugin(app: FastifyInstance, options: MpHttpOptions): Promise<void> {
  app.get<{ Params: { file: string } }>('/mp/v1/pkginfo/:file', async (request, reply) => {
    const { file } = request.params;
    const match = INSTRUCTION_NAME.exec(file);
    const notFound = { error: { code: 'SITECAST_E_NOT_FOUND', message: `instruction file ${JSON.stringify(file.slice(0, 100))} does not exist` } };
    if (match === null) return reply.code(404).send(notFound);
    let data: Buffer;
    try {
      data = await readFile(join(options.pkginfoDir, file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reply.code(404).send(notFound);
      throw err;
    }
    reply.header('content-type', CONTENT_TYPE[match[2] as keyof typeof CONTENT_TYPE]);
    reply.header('cache-control', 'no-cache');
    return reply.send(data);
  });
}
