import type { Command } from 'commander';
import { resolve } from 'node:path';
import {
  ROUTES,
  createdSchema,
  distributeBodySchema,
  packageDpParamsSchema,
  redistributeResultSchema,
  distributeResultSchema,
  newPackageBodySchema,
  packageListSchema,
  packageStatusSchema,
  updateResultSchema,
} from '../components/provider/contract.js';
import { callSite, checkFlags, collect, resolveTarget, type SiteFlags, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, usage, type Io } from './output.js';
import { registerPackageWait } from './package-wait.js';
import { packageId, statusTable } from './package-view.js';
import { table } from './table.js';

interface CreateOpts extends SiteFlags {
  name: string;
  source: string;
  version?: string;
  priority?: string;
  program?: string[];
  maxRunTime?: string[];
  icon?: string;
  json?: boolean;
}


/** `name=value`, split at the first `=` (a command line may hold more). */
function pair(text: string, flag: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw usage(`${flag} ${JSON.stringify(text)} is not <name>=<value>`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function programsOf(opts: CreateOpts): { name: string; commandLine: string; maxRunTimeSeconds?: number }[] {
  const programs = (opts.program ?? []).map((p) => pair(p, '--program')).map(([name, commandLine]) => ({ name, commandLine }));
  const limits = new Map<string, number>();
  for (const spec of opts.maxRunTime ?? []) {
    const [name, seconds] = pair(spec, '--max-run-time');
    if (!programs.some((p) => p.name === name)) throw usage(`--max-run-time names ${JSON.stringify(name)}, which no --program defines`);
    if (!/^\d{1,9}$/.test(seconds)) throw usage(`--max-run-time ${name}=${seconds}: the run time is a whole number of seconds`);
    limits.set(name, Number(seconds));
  }
  return programs.map((p) => {
    const limit = limits.get(p.name);
    return limit === undefined ? p : { ...p, maxRunTimeSeconds: limit };
  });
}

/** `sitecast package …`: define packages, send them to DPs, watch them arrive. */
export function registerPackage(program: Command, io: Io, run: Run): void {
  const pkg = program.command('package').description('packages: create, distribute, update, status, wait');
  const env = (): Readonly<Record<string, string | undefined>> => io.env ?? {};

  withSiteFlags(pkg.command('create').description('create a package from a source folder the site server can read'))
    .requiredOption('--name <n>', 'display name')
    .requiredOption('--source <dir>', 'source folder (made absolute here)')
    .option('--version <v>', 'version text, e.g. 9.0')
    .option('--priority <p>', 'high, medium (default) or low: the order packages travel in')
    .option('--program <name=command line>', 'a program and its command line (repeatable)', collect)
    .option('--max-run-time <name=seconds>', 'time limit of a program (repeatable; default 3600)', collect)
    .option('--icon <file>', 'the package icon: a Windows .ICO file inside the source folder, as a path from it (e.g. setup.ico)')
    .option('--json', 'print one JSON object')
    .action((opts: CreateOpts) =>
      run(async () => {
        const programs = programsOf(opts);
        const body = checkFlags(
          newPackageBodySchema,
          {
            name: opts.name,
            sourcePath: resolve(opts.source),
            ...(opts.version === undefined ? {} : { version: opts.version }),
            ...(opts.priority === undefined ? {} : { priority: opts.priority }),
            ...(programs.length === 0 ? {} : { programs }),
            ...(opts.icon === undefined ? {} : { icon: opts.icon }),
          },
          'package',
        );
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'POST', path: ROUTES.createPackage.url, body }, createdSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`package ${r.id} created\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(pkg.command('list').description('every package of the site'))
    .option('--json', 'print one JSON object')
    .action((opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'GET', path: ROUTES.listPackages.url }, packageListSchema);
        if (opts.json) printJson(io, r);
        else if (r.packages.length === 0) io.stdout('no packages; create one with `sitecast package create`\n');
        else
          io.stdout(
            table(
              ['ID', 'NAME', 'VERSION', 'PRIORITY', 'SOURCE VERSION', 'SOURCE'],
              r.packages.map((p) => [p.id, p.name, p.version, p.priority, String(p.sourceVersion), p.sourcePath]),
            ),
          );
        return 0;
      }, Boolean(opts.json)),
    );

  /** distribute and undistribute: the same flags and answer (the package's targets after the call), another route. */
  const targetsCommand = (name: 'distribute' | 'undistribute', description: string, dpHelp: string, done: (dps: string[], targets: string) => string): void => {
    withSiteFlags(pkg.command(name).description(description))
      .argument('<id>', 'package id, e.g. CEN00001')
      .option('--dp <SITE/dp>', dpHelp, collect)
      .option('--json', 'print one JSON object')
      .action((id: string, opts: SiteFlags & { dp?: string[]; json?: boolean }) =>
        run(async () => {
          const pkgId = packageId(id);
          if (opts.dp === undefined) throw usage('name at least one --dp <SITE>/<dp>');
          const body = checkFlags(distributeBodySchema, { dps: opts.dp }, '--dp');
          const target = await resolveTarget(opts, env());
          const path = ROUTES[name].url.replace(':id', pkgId);
          const r = await callSite(target, { method: 'POST', path, body }, distributeResultSchema);
          if (opts.json) printJson(io, r);
          else io.stdout(`package ${r.id} ${done(opts.dp, r.targets.length === 0 ? 'no DP' : r.targets.map((t) => `${t.site}/${t.dp}`).join(', '))}\n`);
          return 0;
        }, Boolean(opts.json)),
      );
  };
  targetsCommand('distribute', 'send a package to more distribution points', 'a distribution point (repeatable)', (_, targets) => `targets ${targets}`);
  targetsCommand(
    'undistribute',
    'take a package off distribution points of this site: its share and chunks are removed from each',
    'a distribution point the package targets (repeatable)',
    (dps, targets) => `taken off ${dps.join(', ')}; it targets ${targets}`,
  );

  withSiteFlags(pkg.command('update').description('re-read the source folder: every DP gets the new source version'))
    .argument('<id>', 'package id')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const pkgId = packageId(id);
        const target = await resolveTarget(opts, env());
        const path = ROUTES.updatePackage.url.replace(':id', pkgId);
        const r = await callSite(target, { method: 'POST', path }, updateResultSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`package ${r.id} is now at source version ${r.sourceVersion}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(pkg.command('redistribute').description("copy a package onto one DP of this site again (chunks re-checked, share rebuilt)"))
    .argument('<id>', 'package id')
    .requiredOption('--dp <dp>', 'a DP of the site that answers (its name, without the site code)')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: SiteFlags & { dp: string; json?: boolean }) =>
      run(async () => {
        const pkgId = packageId(id);
        const params = checkFlags(packageDpParamsSchema, { id: pkgId, dp: opts.dp }, '--dp');
        const target = await resolveTarget(opts, env());
        const path = ROUTES.redistribute.url.replace(':id', params.id).replace(':dp', encodeURIComponent(params.dp));
        const r = await callSite(target, { method: 'POST', path }, redistributeResultSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`redistribution of ${r.id} to ${r.site}/${r.dp} requested; \`sitecast package status ${r.id}\` shows it\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(pkg.command('status').description('where the package stands on each targeted DP'))
    .argument('<id>', 'package id')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const pkgId = packageId(id);
        const target = await resolveTarget(opts, env());
        const path = ROUTES.packageStatus.url.replace(':id', pkgId);
        const r = await callSite(target, { method: 'GET', path }, packageStatusSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(statusTable(r));
        return 0;
      }, Boolean(opts.json)),
    );

  registerPackageWait(pkg, io, run);
}
