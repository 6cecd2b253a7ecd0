import type { Command } from 'commander';
import { extractManifest } from '../content/extract.js';
import { gcLibrary } from '../content/gc.js';
import { importArchive } from '../content/import.js';
import { ingestTree } from '../content/ingest.js';
import { buildDelta } from '../content/delta.js';
import { checkManifestId } from '../content/library.js';
import { packManifest } from '../content/pack.js';
import { verifyLibrary } from '../content/verify.js';
import { printJson, type Io } from './output.js';
import { progressBar } from './progress.js';

/** Runs an action; its result sets the exit code. */
export type Run = (action: () => Promise<number>, json: boolean) => Promise<void>;

interface LibOpts {
  library: string;
  json?: boolean;
}

/** `sitecast content …`: the content engine on a library folder. */
export function registerContent(program: Command, io: Io, run: Run): void {
  const content = program.command('content').description('content library: ingest, extract, verify, delta, pack, gc');

  content
    .command('ingest')
    .description('store a folder in the library; prints the manifest id of the version')
    .requiredOption('--library <dir>', 'content library folder (created if absent)')
    .argument('<source-dir>', 'folder to ingest')
    .option('--json', 'print one JSON object')
    .action((source: string, opts: LibOpts) =>
      run(async () => {
        const bar = progressBar(io, 'ingest', !opts.json);
        try {
          const r = await ingestTree(opts.library, source, bar.onProgress ? { onProgress: bar.onProgress } : {});
          bar.stop();
          if (opts.json) printJson(io, r);
          else io.stdout(`${r.manifest}\n${r.files} files, ${r.bytes} bytes; ${r.storedBytes} bytes stored, ${r.newBytes} new\n`);
        } finally {
          bar.stop();
        }
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('extract')
    .description('write a version into a new or empty folder, verifying every chunk and file')
    .requiredOption('--library <dir>', 'content library folder')
    .argument('<manifest>', 'manifest id')
    .argument('<dest-dir>', 'destination folder (new or empty)')
    .option('--json', 'print one JSON object')
    .action((manifest: string, dest: string, opts: LibOpts) =>
      run(async () => {
        const bar = progressBar(io, 'extract', !opts.json);
        try {
          const r = await extractManifest(opts.library, checkManifestId(manifest), dest, bar.onProgress ? { onProgress: bar.onProgress } : {});
          bar.stop();
          if (opts.json) printJson(io, r);
          else io.stdout(`${r.files} files, ${r.bytes} bytes written to ${dest}\n`);
        } finally {
          bar.stop();
        }
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('verify')
    .description('re-hash every chunk; exit 1 if any is missing or corrupt')
    .requiredOption('--library <dir>', 'content library folder')
    .option('--json', 'print one JSON object')
    .action((opts: LibOpts) =>
      run(async () => {
        const bar = progressBar(io, 'verify', !opts.json);
        const r = await verifyLibrary(opts.library, bar.onProgress ? { onProgress: bar.onProgress } : {}).finally(bar.stop);
        if (opts.json) printJson(io, r);
        else {
          io.stdout(`${r.chunks} chunks, ${r.manifests} manifests, ${r.bad.length} bad\n`);
          for (const b of r.bad) {
            const where = b.breaks.map((x) => `${x.manifest.slice(0, 12)}:${x.path}`).join(', ');
            io.stdout(`${b.problem} ${b.chunk}${where ? ` breaks ${where}` : ' (unreferenced)'}\n`);
          }
        }
        for (const m of r.badManifests) if (!opts.json) io.stdout(`bad manifest ${m.manifest}: ${m.problem}\n`);
        return r.bad.length > 0 || r.badManifests.length > 0 ? 1 : 0;
      }, Boolean(opts.json)),
    );

  content
    .command('delta')
    .description('write what a holder of <old> lacks to rebuild <new>')
    .requiredOption('--library <dir>', 'content library folder')
    .requiredOption('--out <file>', 'delta file to write')
    .argument('<old-manifest>', 'version the receiver holds')
    .argument('<new-manifest>', 'version to send')
    .option('--json', 'print one JSON object')
    .action((oldId: string, newId: string, opts: LibOpts & { out: string }) =>
      run(async () => {
        const bar = progressBar(io, 'delta', !opts.json);
        const r = await buildDelta(opts.library, checkManifestId(oldId), checkManifestId(newId), opts.out, bar.onProgress ? { onProgress: bar.onProgress } : {}).finally(bar.stop);
        if (opts.json) printJson(io, r);
        else io.stdout(`${r.bytes} bytes: ${r.patches} patches (${r.patchBytes} bytes), ${r.chunks} chunks (${r.chunkBytes} bytes)\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('apply')
    .description('apply a delta to a library that holds its base version')
    .requiredOption('--library <dir>', 'content library folder')
    .argument('<delta-file>', 'delta archive')
    .option('--json', 'print one JSON object')
    .action((file: string, opts: LibOpts) =>
      run(async () => {
        const r = await importArchive(opts.library, file, { expect: 'delta' });
        if (opts.json) printJson(io, { manifest: r.manifest, chunks: r.chunks, patches: r.patches });
        else io.stdout(`${r.manifest}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('pack')
    .description('write a full archive of one version')
    .requiredOption('--library <dir>', 'content library folder')
    .requiredOption('--out <file>', 'archive file to write')
    .argument('<manifest>', 'manifest id')
    .option('--json', 'print one JSON object')
    .action((manifest: string, opts: LibOpts & { out: string }) =>
      run(async () => {
        const r = await packManifest(opts.library, checkManifestId(manifest), opts.out);
        if (opts.json) printJson(io, r);
        else io.stdout(`${r.bytes} bytes, ${r.chunks} chunks written to ${opts.out}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('unpack')
    .description('store a full archive (or a delta) in the library')
    .requiredOption('--library <dir>', 'content library folder (created if absent)')
    .argument('<file>', 'archive file')
    .option('--json', 'print one JSON object')
    .action((file: string, opts: LibOpts) =>
      run(async () => {
        const r = await importArchive(opts.library, file);
        if (opts.json) printJson(io, { manifest: r.manifest, kind: r.kind, chunks: r.chunks, patches: r.patches });
        else io.stdout(`${r.manifest}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  content
    .command('gc')
    .description('remove every manifest not kept and every chunk no kept manifest uses')
    .requiredOption('--library <dir>', 'content library folder')
    .requiredOption('--keep <manifest...>', 'manifest ids still in use')
    .option('--json', 'print one JSON object')
    .action((opts: LibOpts & { keep: string[] }) =>
      run(async () => {
        const r = await gcLibrary(opts.library, opts.keep);
        if (opts.json) printJson(io, r);
        else io.stdout(`removed ${r.removed} chunks (${r.removedBytes} bytes) and ${r.removedManifests} manifests; kept ${r.kept} chunks\n`);
        return 0;
      }, Boolean(opts.json)),
    );
}
