import type { Command } from 'commander';
import { initSite } from '../site/init.js';
import { keyFingerprint } from '../formats/client-protocol.js';
import { initChildSite } from '../site/join.js';
import { ROUTES, inviteBodySchema, inviteResultSchema } from '../components/provider/contract.js';
import { type SiteFlags, callSite, checkFlags, resolveTarget, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, usage, type Io } from './output.js';
import { registerSiteBackup } from './site-backup.js';

interface InitOpts {
  code: string;
  name?: string;
  listen?: string;
  database?: string;
  parent?: string;
  joinToken?: string;
  json?: boolean;
}

interface InviteOpts extends SiteFlags {
  child: string;
  expires?: string;
  json?: boolean;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

function configuredUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `sitecast site …`: create a site root, run its server. */
export function registerSite(program: Command, io: Io, run: Run): void {
  const site = program.command('site').description('create and run a site server');

  site
    .command('init')
    .description('create a site root: configuration, database, keys, inboxes, and an admin token (printed once)')
    .argument('<root>', 'new or empty folder')
    .requiredOption('--code <code>', 'site code: 3 upper-case letters or digits, e.g. CEN')
    .option('--name <text>', 'display name (default: "Site <code>")')
    .option('--listen <host:port>', 'address of the admin API and site-to-site receiver (default 127.0.0.1:8430)')
    .option('--database <url>', 'put the site database on PostgreSQL (postgres://user@host:port/db; password in the URL or PGPASSWORD); default SQLite in <root>/site.db')
    .option('--parent <url>', 'join the hierarchy below the site server at this URL (needs --join-token)')
    .option('--join-token <token>', 'one-time token from `sitecast site invite` at the parent')
    .option('--json', 'print one JSON object')
    .action((root: string, opts: InitOpts) =>
      run(async () => {
        if ((opts.parent === undefined) !== (opts.joinToken === undefined)) throw usage('--parent and --join-token go together');
        if (!/^[A-Z0-9]{3}$/.test(opts.code)) throw usage(`--code ${JSON.stringify(opts.code)} is not a site code: exactly 3 upper-case letters or digits, e.g. CEN`);
        const base = {
          code: opts.code,
          ...(opts.name === undefined ? {} : { name: opts.name }),
          ...(opts.listen === undefined ? {} : { listen: opts.listen }),
          ...(opts.database === undefined ? {} : { database: opts.database }),
        };
        const joined = opts.parent !== undefined && opts.joinToken !== undefined ? await initChildSite(root, { ...base, parent: opts.parent, joinToken: opts.joinToken }) : undefined;
        const r = joined ?? (await initSite(root, base));
        const url = configuredUrl(r.config.listen.host, r.config.listen.port);
        if (opts.json) {
          // Port 0: the port is chosen at each start, so there is no URL yet (`site start` writes it to <root>/site.url).
          const at = r.config.listen.port === 0 ? { url: null, urlFile: r.paths.siteUrl } : { url };
          printJson(io, { site: r.config.code, ...at, token: r.adminToken, keyFingerprint: keyFingerprint(r.publicKeyPem), ...(joined === undefined ? {} : { parent: joined.parent.code, ancestors: joined.ancestors }) });
          return 0;
        }
        if (joined !== undefined) io.stdout(`joined the hierarchy below ${joined.parent.code} (${joined.parent.url})${joined.ancestors.length > 0 ? `, under ${joined.ancestors.join(' < ')}` : ''}\n`);
        io.stdout(
          `site ${r.config.code} (${r.config.name}) created in ${r.root}\n` +
            `url:   ${r.config.listen.port === 0 ? `${url.replace(/:0$/, ':<port>')} (a free port chosen at each start; \`site start\` prints it and writes it to ${r.root}/site.url)` : url}\n` +
            `token: ${r.adminToken}\n` +
            `key:   ${keyFingerprint(r.publicKeyPem)}\n` +
            `The admin token is shown only this once; it is also in ${r.paths.adminToken} (mode 0600).\n` +
            `Clients can pin the site key: sitecast client register --site-key ${keyFingerprint(r.publicKeyPem)} …\n` +
            `Start the site with: sitecast site start ${r.root}\n`,
        );
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(
    site
      .command('invite')
      .description('issue a one-time join token for a child site (run at the parent; the token is shown once)')
      .requiredOption('--child <code>', 'code of the child site that will join'),
  )
    .option('--expires <hours>', 'hours the token stays valid (default 24)')
    .option('--json', 'print one JSON object')
    .action((opts: InviteOpts) =>
      run(async () => {
        const hours = opts.expires === undefined ? undefined : Number(opts.expires);
        if (hours !== undefined && !(Number.isFinite(hours) && hours > 0)) throw usage('--expires takes a positive number of hours');
        const body = checkFlags(inviteBodySchema, { child: opts.child, ...(hours === undefined ? {} : { expiresInSeconds: Math.round(hours * 3600) }) }, 'invite');
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'POST', path: ROUTES.invite.url, body }, inviteResultSchema);
        if (opts.json) printJson(io, { token: r.token, child: r.child, expiresAt: r.expiresAt });
        else
          io.stdout(
            `join token for ${r.child} (valid once, until ${r.expiresAt}):\n${r.token}\n` +
              `On the child: sitecast site init <root> --code ${r.child} --parent ${target.url} --join-token <token>\n`,
          );
        return 0;
      }, Boolean(opts.json)),
    );

  site
    .command('start')
    .description('run the site server in the foreground until SIGTERM or SIGINT')
    .argument('<root>', 'site root')
    .action((root: string) =>
      run(async () => {
        // Loaded here so that every other command starts without the server and its components.
        const { startSite } = await import('../site/server.js');
        const running = await startSite(root);
        // Listen for the signal before saying we listen: whoever reads the line may stop us at once.
        const stopping = untilSignal();
        io.stdout(`site server listening at ${running.url}\n`);
        const signal = await stopping;
        io.stdout(`${signal}: stopping\n`);
        await running.close();
        io.stdout('stopped\n');
        return 0;
      }, false),
    );

  registerSiteBackup(site, io, run);
}
