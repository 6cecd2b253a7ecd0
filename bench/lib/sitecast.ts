import { z } from 'zod';
import { sitecastBin } from './paths.js';
import type { BenchContext, Measured } from './types.js';

/** The `sitecast content` commands as a user runs them: `node bin/sitecast.js …`, output parsed. */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const count = z.number().int().nonnegative();

export const IngestOutput = z.object({
  manifest: sha256,
  files: count,
  bytes: count,
  storedBytes: count,
  newBytes: count,
});
export type IngestOutput = z.infer<typeof IngestOutput>;
const DeltaOutput = z.object({ bytes: count });
const ManifestOutput = z.object({ manifest: sha256 });
const VerifyOutput = z.object({ chunks: count, bad: z.array(z.unknown()) });

function parseJson<T>(schema: z.ZodType<T>, m: Measured, what: string): T {
  const text = m.stdout.trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what} printed no JSON: ${text.slice(0, 200) || '(nothing)'}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${what} printed unexpected JSON: ${text.slice(0, 200)}`);
  return parsed.data;
}

/** Errors name the subcommand rather than the long node/script paths. */
async function sitecast(ctx: BenchContext, args: string[]): Promise<Measured> {
  try {
    return await ctx.run(process.execPath, [sitecastBin, 'content', ...args], { cwd: ctx.repoRoot });
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^.*? failed \(/, 'failed (') : String(err);
    throw new Error(`content ${args[0] ?? ''} ${why}`, { cause: err });
  }
}

export async function ingest(
  ctx: BenchContext,
  library: string,
  source: string,
): Promise<{ out: IngestOutput; run: Measured }> {
  const run = await sitecast(ctx, ['ingest', '--library', library, source, '--json']);
  return { out: parseJson(IngestOutput, run, 'content ingest'), run };
}

export function extract(ctx: BenchContext, library: string, manifest: string, dest: string): Promise<Measured> {
  return sitecast(ctx, ['extract', '--library', library, manifest, dest]);
}

export async function delta(
  ctx: BenchContext,
  library: string,
  versions: { oldManifest: string; newManifest: string; out: string },
): Promise<{ bytes: number; run: Measured }> {
  const { oldManifest, newManifest, out } = versions;
  const run = await sitecast(ctx, ['delta', '--library', library, oldManifest, newManifest, '--out', out, '--json']);
  return { bytes: parseJson(DeltaOutput, run, 'content delta').bytes, run };
}

export async function apply(
  ctx: BenchContext,
  library: string,
  deltaFile: string,
): Promise<{ manifest: string; run: Measured }> {
  const run = await sitecast(ctx, ['apply', '--library', library, deltaFile, '--json']);
  return { manifest: parseJson(ManifestOutput, run, 'content apply').manifest, run };
}

export function pack(ctx: BenchContext, library: string, manifest: string, out: string): Promise<Measured> {
  return sitecast(ctx, ['pack', '--library', library, manifest, '--out', out]);
}

export async function verify(ctx: BenchContext, library: string): Promise<{ chunks: number; run: Measured }> {
  const run = await sitecast(ctx, ['verify', '--library', library, '--json']);
  return { chunks: parseJson(VerifyOutput, run, 'content verify').chunks, run };
}
