import type { Command } from 'commander';
import { buildDelta } from '../content/delta.js';
import { extractManifest } from '../content/extract.js';
import { gcLibrary } from '../content/gc.js';
import { importArchive } from '../content/import.js';
import { ingestTree } from '../content/ingest.js';
import { checkManifestId } from '../content/library.js';
import { packManifest } from '../content/pack.js';
import type { ProgressFn, VerifyResult } from '../content/types.js';
import { verifyLibrary } from '../content/verify.js';
import { printJson, type Io } from './output.js';
import { progressBar } from './progress.js';

/** Runs an action; its result sets the exit code. */
export type Run = (action: () => Promise<number>, json: boolean) => Promise<void>;

interface LibOpts {
  library: string;
  json?: boolean;
}

/** Runs long work with a progress bar on a terminal (never with --json), removed before output. */
async function withProgress<T>(io: Io, label: string, json: boolean | undefined, work: (p: { onProgress?: ProgressFn }) => Promise<T>): Promise<T> {
  const bar = progressBar(io, label, !json);
  try {
    return await work(bar.onProgress ? { onProgress: bar.onProgress } : {});
  } finally {
    bar.stop();
  }
}

/** One JSON object with --json, else the human line(s). */
function report(io: Io, json: boolean | undefined, value: unknown, human: string): void {
  if (json) printJson(io, value);
  else io.stdout(human.endsWith('\n') ? human : `${human}\n`);
}

function describeVerify(r: VerifyResult): string {
  const lines = [`${r.chunks} chunks, ${r.manifests} manifests, ${r.bad.length} bad`];
  for (const b of r.bad) {
    const where = b.breaks.map((x) => `${x.manifest.slice(0, 12)}:${x.path}`).join(', ');
    lines.push(`${b.problem} ${b.chunk}${where ? ` breaks ${where}` : ' (unreferenced)'}`);
  }
  for (const m of r.badManifests) lines.push(`bad manifest ${m.manifest}: ${m.problem}`);
  return lines.join('\n');
}

/** `sitecast content …`: the content engine on a library folder. */
export function registerContent(program: Command, io: Io, run: Run): void {
  const content = program.command('content').description('content library: ingest, extract, verify, delta, pack, gc');
  const libraryCommand = (name: string, description: string, libraryHelp = 'content library folder') =>
    content.command(name).description(description).requiredOption('--library <dir>', libraryHelp).option('--json', 'print one JSON object');

  libraryCommand('ingest', 'store a folder in the library; prints the manifest id of the version', 'content library folder (created if absent)')
    .argument('<source-dir>', 'folder to ingest')
    .action((source: string, opts: LibOpts) =>
      run(async () => {
        const r = await withProgress(io, 'ingest', opts.json, (p) => ingestTree(opts.library, source, p));
        report(io, opts.json, r, `${r.manifest}\n${r.files} files, ${r.bytes} bytes; ${r.storedBytes} bytes stored, ${r.newBytes} new`);
        if (r.modeBitsDropped.length > 0) {
          const shown = r.modeBitsDropped.slice(0, 5).join(', ') + (r.modeBitsDropped.length > 5 ? ` and ${r.modeBitsDropped.length - 5} more` : '');
          io.stderr(`note: set-user-ID, set-group-ID and sticky bits are not kept (only permission bits are): ${shown}\n`);
        }
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('extract', 'write a version into a new or empty folder, verifying every chunk and file')
    .argument('<manifest>', 'manifest id')
    .argument('<dest-dir>', 'destination folder (new or empty)')
    .action((manifest: string, dest: string, opts: LibOpts) =>
      run(async () => {
        const r = await withProgress(io, 'extract', opts.json, (p) => extractManifest(opts.library, checkManifestId(manifest), dest, p));
        report(io, opts.json, r, `${r.files} files, ${r.bytes} bytes written to ${dest}`);
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('verify', 're-hash every chunk; exit 1 if any chunk or manifest is missing or corrupt').action((opts: LibOpts) =>
    run(async () => {
      const r = await withProgress(io, 'verify', opts.json, (p) => verifyLibrary(opts.library, p));
      report(io, opts.json, r, describeVerify(r));
      return r.bad.length > 0 || r.badManifests.length > 0 ? 1 : 0;
    }, Boolean(opts.json)),
  );

  libraryCommand('delta', 'write what a holder of <old> lacks to rebuild <new>')
    .requiredOption('--out <file>', 'delta file to write')
    .argument('<old-manifest>', 'version the receiver holds')
    .argument('<new-manifest>', 'version to send')
    .action((oldId: string, newId: string, opts: LibOpts & { out: string }) =>
      run(async () => {
        const r = await withProgress(io, 'delta', opts.json, (p) => buildDelta(opts.library, checkManifestId(oldId), checkManifestId(newId), opts.out, p));
        report(io, opts.json, r, `${r.bytes} bytes: ${r.patches} patches (${r.patchBytes} bytes), ${r.chunks} chunks (${r.chunkBytes} bytes)`);
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('apply', 'apply a delta to a library that holds its base version')
    .argument('<delta-file>', 'delta archive')
    .action((file: string, opts: LibOpts) =>
      run(async () => {
        const r = await withProgress(io, 'apply', opts.json, (p) => importArchive(opts.library, file, { expect: 'delta', ...p }));
        report(io, opts.json, { manifest: r.manifest, chunks: r.chunks, patches: r.patches }, r.manifest);
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('pack', 'write a full archive of one version')
    .requiredOption('--out <file>', 'archive file to write')
    .argument('<manifest>', 'manifest id')
    .action((manifest: string, opts: LibOpts & { out: string }) =>
      run(async () => {
        const r = await withProgress(io, 'pack', opts.json, (p) => packManifest(opts.library, checkManifestId(manifest), opts.out, p));
        report(io, opts.json, r, `${r.bytes} bytes, ${r.chunks} chunks written to ${opts.out}`);
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('unpack', 'store a full archive (or a delta) in the library', 'content library folder (created if absent)')
    .argument('<file>', 'archive file')
    .action((file: string, opts: LibOpts) =>
      run(async () => {
        const r = await withProgress(io, 'unpack', opts.json, (p) => importArchive(opts.library, file, p));
        report(io, opts.json, { manifest: r.manifest, kind: r.kind, chunks: r.chunks, patches: r.patches }, r.manifest);
        return 0;
      }, Boolean(opts.json)),
    );

  libraryCommand('gc', 'remove every manifest not kept and every chunk no kept manifest uses')
    .requiredOption('--keep <manifest...>', 'manifest ids still in use')
    .action((opts: LibOpts & { keep: string[] }) =>
      run(async () => {
        const r = await withProgress(io, 'gc', opts.json, (p) => gcLibrary(opts.library, opts.keep, p));
        report(io, opts.json, r, `removed ${r.removed} chunks (${r.removedBytes} bytes) and ${r.removedManifests} manifests; kept ${r.kept} chunks`);
        return 0;
      }, Boolean(opts.json)),
    );
}
