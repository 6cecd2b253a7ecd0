import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ROUTES, dpListSchema, dpParamsSchema, dpSchema, removeDpBodySchema, removeDpResultSchema } from '../components/provider/contract.js';
import { type SiteFlags, callSite, checkFlags, resolveTarget, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';
import { table } from './table.js';

interface DpAddOpts extends SiteFlags {
  site?: string;
  name: string;
  path: string;
  json?: boolean;
}

/** `sitecast dp …`: distribution points of the site. */
export function registerDp(program: Command, io: Io, run: Run): void {
  const dp = program.command('dp').description('distribution points');

  withSiteFlags(
    dp
      .command('add')
      .description('add a distribution point: a folder where packages are installed, at this site or (--site) at a site below it')
      .option('--site <code>', 'the site the DP belongs to (default this site); the definition travels down and that site creates it')
      .requiredOption('--name <dp>', 'DP name: letters, digits, space, dot, dash, underscore')
      .requiredOption('--path <dir>', 'folder on the site server (made absolute here)'),
  )
    .option('--json', 'print one JSON object')
    .action((opts: DpAddOpts) =>
      run(async () => {
        const target = await resolveTarget(opts, io.env ?? {});
        const remote = opts.site !== undefined;
        // A path at another site is that site's path: it is not made absolute against this machine's folder.
        const body = { name: opts.name, path: remote ? opts.path : resolve(opts.path), ...(remote ? { site: opts.site } : {}) };
        const r = await callSite(target, { method: 'POST', path: ROUTES.addDp.url, body }, dpSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`DP ${r.site}/${r.name} added at ${r.path}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(
    dp
      .command('remove')
      .description('remove a distribution point once no package is on it (take packages off with `package undistribute` first); its folder is left as it is')
      .option('--site <code>', 'the site the DP belongs to (default this site); a site below is asked to remove it and reports back')
      .requiredOption('--name <dp>', 'DP name'),
  )
    .option('--json', 'print one JSON object')
    .action((opts: SiteFlags & { site?: string; name: string; json?: boolean }) =>
      run(async () => {
        const name = checkFlags(dpParamsSchema, { name: opts.name }, '--name').name;
        const body = checkFlags(removeDpBodySchema, opts.site === undefined ? {} : { site: opts.site }, '--site');
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'POST', path: ROUTES.removeDp.url.replace(':name', encodeURIComponent(name)), body }, removeDpResultSchema);
        if (opts.json) printJson(io, r);
        else if (r.state === 'removed') io.stdout(`DP ${r.site}/${r.name} removed; its folder ${r.path} is left as it is\n`);
        else io.stdout(`removal of DP ${r.site}/${r.name} requested: site ${r.site} removes it once no package is on it, and the sites above forget it when it reports back (status messages say if it cannot)\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(dp.command('list').description('distribution points of every known site'))
    .option('--json', 'print one JSON object')
    .action((opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'GET', path: ROUTES.listDps.url }, dpListSchema);
        if (opts.json) printJson(io, r);
        else if (r.dps.length === 0) io.stdout('no distribution points; add one with `sitecast dp add`\n');
        else io.stdout(table(['DP', 'PATH'], r.dps.map((d) => [`${d.site}/${d.name}`, d.path])));
        return 0;
      }, Boolean(opts.json)),
    );
}
