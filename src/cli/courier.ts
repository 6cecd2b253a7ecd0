import type { Command } from 'commander';
import { resolve } from 'node:path';
import { importParcel } from '../components/sender/courier.js';
import { loadSiteConfig } from '../site/config.js';
import { sitePaths } from '../site/layout.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';

/** `sitecast courier import`: a parcel carried by hand becomes a bundle in this site's receive folder. */
export function registerCourier(program: Command, io: Io, run: Run): void {
  const courier = program.command('courier').description('parcels carried between sites no link reaches');
  courier
    .command('import')
    .description('check a parcel (framing, checksums, addressed here) and drop its bundle into despoolr.box/receive/')
    .requiredOption('--root <root>', 'site root of the target site')
    .argument('<file>', 'the parcel file')
    .option('--json', 'print one JSON object')
    .action((file: string, opts: { root: string; json?: boolean }) =>
      run(async () => {
        const root = resolve(opts.root);
        const config = await loadSiteConfig(root);
        const r = await importParcel(sitePaths(root), config.code, resolve(file));
        if (opts.json) printJson(io, { id: r.id, from: r.from, bytes: r.bytes });
        else io.stdout(`parcel ${r.id} from ${r.from} imported: ${r.bytes} bytes into ${r.bundle}\n`);
        return 0;
      }, Boolean(opts.json)),
    );
}
