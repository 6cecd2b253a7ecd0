import type { Command } from 'commander';
import type { BackupProgress } from '../site/backup/backup.js';
import type { Run } from './content.js';
import { VERSION } from './main.js';
import { printJson, type Io } from './output.js';
import { progressBar } from './progress.js';

interface BackupOpts {
  out: string;
  json?: boolean;
}

interface RestoreOpts {
  database?: string;
  json?: boolean;
}

const LABELS: Record<string, string> = { database: 'database', files: 'files   ', checksum: 'checksum', restore: 'restore ', verify: 'verify  ' };

/** One progress bar per phase on a terminal; nothing when piped or with --json. */
function phases(io: Io, json: boolean | undefined): { onProgress: (p: BackupProgress) => void; stop: () => void } {
  let current: { phase: string; bar: ReturnType<typeof progressBar> } | undefined;
  return {
    onProgress: (p) => {
      if (p.total === 0) return;
      if (current?.phase !== p.phase) {
        current?.bar.stop();
        current = { phase: p.phase, bar: progressBar(io, LABELS[p.phase] ?? p.phase, !json) };
      }
      current.bar.onProgress?.(p.done, p.total);
    },
    stop: () => current?.bar.stop(),
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `sitecast site backup` and `site restore`. */
export function registerSiteBackup(site: Command, io: Io, run: Run): void {
  site
    .command('backup')
    .description('write a backup of a site (database rows, keys, content library, packages, unfinished inbox work) to one file; safe while the site runs')
    .argument('<root>', 'site root')
    .requiredOption('--out <file>', 'the backup file to write (replaced if it exists; mode 0600: it holds the site key)')
    .option('--json', 'print one JSON object')
    .action((root: string, opts: BackupOpts) =>
      run(async () => {
        const { backupSite } = await import('../site/backup/backup.js');
        const progress = phases(io, opts.json);
        let r;
        try {
          r = await backupSite(root, opts.out, { sitecast: VERSION, onProgress: progress.onProgress });
        } finally {
          progress.stop();
        }
        const rows = Object.values(r.tables).reduce((a, b) => a + b, 0);
        if (opts.json) printJson(io, { file: r.file, bytes: r.bytes, schemaVersion: r.schemaVersion, tables: r.tables, files: r.files, chunks: r.chunks });
        else io.stdout(`backup written to ${r.file}: ${megabytes(r.bytes)}, schema version ${r.schemaVersion}, ${rows} rows in ${Object.keys(r.tables).length} tables, ${r.files} files (${r.chunks} chunks)\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  site
    .command('restore')
    .description('create a new site root from a backup; the backup is checked whole first, and a failed restore leaves nothing behind')
    .argument('<file>', 'backup file written by `site backup`')
    .argument('<root>', 'new or empty folder')
    .option('--database <url>', 'restore the database into this empty PostgreSQL database (postgres://user@host:port/db) instead of <root>/site.db')
    .option('--json', 'print one JSON object')
    .action((file: string, root: string, opts: RestoreOpts) =>
      run(async () => {
        const { restoreSite } = await import('../site/backup/restore.js');
        const progress = phases(io, opts.json);
        let r;
        try {
          r = await restoreSite(file, root, { ...(opts.database === undefined ? {} : { database: opts.database }), onProgress: progress.onProgress });
        } finally {
          progress.stop();
        }
        const rows = Object.values(r.tables).reduce((a, b) => a + b, 0);
        if (opts.json) printJson(io, r);
        else
          io.stdout(
            `site ${r.site} restored in ${r.root} (database ${r.database}, schema version ${r.schemaVersion}): ${rows} rows, ${r.files} files (${r.chunks} chunks); the content library verified\n` +
              `Start it with: sitecast site start ${r.root}\n`,
          );
        return 0;
      }, Boolean(opts.json)),
    );
}
