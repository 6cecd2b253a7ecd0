import type { Command } from 'commander';
import {
  CLIENT_ROUTES,
  advertisementCreatedSchema,
  advertisementStatusSchema,
  boundarySchema,
  clientListSchema,
  clientSettingsSchema,
  clientViewSchema,
  collectionSchema,
  newAdvertisementBodySchema,
  newBoundaryBodySchema,
  newCollectionBodySchema,
  rerunResultSchema,
} from '../components/provider/clients-contract.js';
import { callSite, checkFlags, collect, resolveTarget, type SiteFlags, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, usage, type Io } from './output.js';
import { packageId } from './package-view.js';
import { table } from './table.js';


type JsonFlag = SiteFlags & { json?: boolean };

/**
 * The administrator's side of clients, over the admin API: collections,
 * advertisements and their status, boundaries, client approval.
 */
export function registerCollections(program: Command, clientGroup: Command, io: Io, run: Run): void {
  const env = (): Readonly<Record<string, string | undefined>> => io.env ?? {};
  const collection = program.command('collection').description('collections: the clients an advertisement goes to');

  withSiteFlags(collection.command('create').description('create a collection of direct members and rules'))
    .requiredOption('--name <c>', 'collection name')
    .option('--member <client>', 'a client id (GUID:…) or name (repeatable)', collect)
    .option('--rule <rule>', 'name:<glob>, site:<ABC> or boundary:<name> (repeatable)', collect)
    .option('--json', 'print one JSON object')
    .action((opts: JsonFlag & { name: string; member?: string[]; rule?: string[] }) =>
      run(async () => {
        const body = checkFlags(newCollectionBodySchema, { name: opts.name, members: opts.member ?? [], rules: opts.rule ?? [] }, 'collection');
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'POST', path: CLIENT_ROUTES.createCollection.url, body }, collectionSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`collection ${r.name} created (${r.members.length} members, ${r.rules.length} rules)\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(program.command('advertise').description('offer a program of a package to a collection'))
    .argument('<package-id>', 'package id, e.g. CEN00001')
    .requiredOption('--program <name>', 'the program to run')
    .requiredOption('--collection <c>', 'the collection it goes to')
    .option('--available <ISO time>', 'not before this time (default now)')
    .option('--mandatory <ISO time>', 'must have run by this time (runs first)')
    .option('--expires <ISO time>', 'not after this time')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: JsonFlag & { program: string; collection: string; available?: string; mandatory?: string; expires?: string }) =>
      run(async () => {
        const body = checkFlags(
          newAdvertisementBodySchema,
          {
            packageId: packageId(id),
            program: opts.program,
            collection: opts.collection,
            ...(opts.available === undefined ? {} : { available: isoFlag(opts.available, '--available') }),
            ...(opts.mandatory === undefined ? {} : { mandatory: isoFlag(opts.mandatory, '--mandatory') }),
            ...(opts.expires === undefined ? {} : { expires: isoFlag(opts.expires, '--expires') }),
          },
          'advertisement',
        );
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'POST', path: CLIENT_ROUTES.advertise.url, body }, advertisementCreatedSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`advertisement ${r.id} created\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  const advertisement = program.command('advertisement').description('advertisements: status, run again');
  withSiteFlags(advertisement.command('status').description("each targeted client's state and exit code"))
    .argument('<id>', 'advertisement id')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: JsonFlag) =>
      run(async () => {
        const target = await resolveTarget(opts, env());
        const path = CLIENT_ROUTES.advertisementStatus.url.replace(':id', packageId(id));
        const r = await callSite(target, { method: 'GET', path }, advertisementStatusSchema);
        if (opts.json) printJson(io, r);
        else {
          io.stdout(`targeted ${r.targeted}, received ${r.received}, running ${r.running}, succeeded ${r.succeeded}, failed ${r.failed}\n`);
          if (r.clients.length > 0) {
            io.stdout(table(['CLIENT', 'NAME', 'STATE', 'EXIT CODE', 'UPDATED'], r.clients.map((c) => [c.client, c.name, c.state, c.exitCode === null ? '' : String(c.exitCode), c.updated ?? ''])));
          }
        }
        return 0;
      }, Boolean(opts.json)),
    );
  withSiteFlags(advertisement.command('rerun').description('run the program again on every targeted client'))
    .argument('<id>', 'advertisement id')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: JsonFlag) =>
      run(async () => {
        const target = await resolveTarget(opts, env());
        const path = CLIENT_ROUTES.rerunAdvertisement.url.replace(':id', packageId(id));
        const r = await callSite(target, { method: 'POST', path }, rerunResultSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`advertisement ${r.id} runs again (${r.rerun})\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  const boundary = program.command('boundary').description('boundaries: IP ranges whose clients belong to a site');
  withSiteFlags(boundary.command('add').description('add a boundary'))
    .requiredOption('--name <n>', 'boundary name')
    .requiredOption('--range <range>', 'CIDR (10.1.0.0/16) or range (10.1.0.1-10.1.0.99)')
    .requiredOption('--site <ABC>', 'the site its clients belong to')
    .option('--mp <url>', "that site's management point, told to clients found here")
    .option('--json', 'print one JSON object')
    .action((opts: JsonFlag & { name: string; range: string; site: string; mp?: string }) =>
      run(async () => {
        const body = checkFlags(newBoundaryBodySchema, { name: opts.name, range: opts.range, site: opts.site, ...(opts.mp === undefined ? {} : { mpUrl: opts.mp }) }, 'boundary');
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'POST', path: CLIENT_ROUTES.addBoundary.url, body }, boundarySchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`boundary ${r.name} ${r.range} → site ${r.site}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(clientGroup.command('list').description('registered clients (admin)'))
    .option('--json', 'print one JSON object')
    .action((opts: JsonFlag) =>
      run(async () => {
        const target = await resolveTarget(opts, env());
        const r = await callSite(target, { method: 'GET', path: CLIENT_ROUTES.listClients.url }, clientListSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(table(['ID', 'NAME', 'SITE', 'BOUNDARY', 'APPROVED', 'LAST SEEN'], r.clients.map((c) => [c.id, c.name, c.site, c.boundary ?? '', c.approved ? 'yes' : 'no', c.lastSeenAt ?? ''])));
        return 0;
      }, Boolean(opts.json)),
    );
  withSiteFlags(clientGroup.command('approve').description('approve a client waiting for approval (admin)'))
    .argument('<client>', 'client id or name')
    .option('--json', 'print one JSON object')
    .action((client: string, opts: JsonFlag) =>
      run(async () => {
        const target = await resolveTarget(opts, env());
        const path = CLIENT_ROUTES.approveClient.url.replace(':id', encodeURIComponent(client));
        const r = await callSite(target, { method: 'POST', path }, clientViewSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`client ${r.id} (${r.name}) approved\n`);
        return 0;
      }, Boolean(opts.json)),
    );
  withSiteFlags(clientGroup.command('require-approval').description('whether new clients need approval (admin)'))
    .argument('<on|off>', 'on or off')
    .option('--json', 'print one JSON object')
    .action((value: string, opts: JsonFlag) =>
      run(async () => {
        if (value !== 'on' && value !== 'off') throw usage('require-approval takes on or off');
        const target = await resolveTarget(opts, env());
        const body = { requireApproval: value === 'on' };
        const r = await callSite(target, { method: 'POST', path: CLIENT_ROUTES.clientSettings.url, body }, clientSettingsSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`new clients ${r.requireApproval ? 'need' : 'do not need'} approval\n`);
        return 0;
      }, Boolean(opts.json)),
    );
}

function isoFlag(text: string, flag: string): string {
  const t = Date.parse(text);
  if (!Number.isFinite(t)) throw usage(`${flag} ${JSON.stringify(text)} is not an ISO time (e.g. 2025-01-31T18:00:00Z)`);
  return new Date(t).toISOString();
}
