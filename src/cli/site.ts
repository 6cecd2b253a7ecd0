import type { Command } from 'commander';
import { initSite } from '../site/init.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';

interface InitOpts {
  code: string;
  name?: string;
  listen?: string;
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
    .option('--json', 'print one JSON object')
    .action((root: string, opts: InitOpts) =>
      run(async () => {
        const r = await initSite(root, {
          code: opts.code,
          ...(opts.name === undefined ? {} : { name: opts.name }),
          ...(opts.listen === undefined ? {} : { listen: opts.listen }),
        });
        const url = configuredUrl(r.config.listen.host, r.config.listen.port);
        if (opts.json) {
          printJson(io, { site: r.config.code, url, token: r.adminToken });
          return 0;
        }
        io.stdout(
          `site ${r.config.code} (${r.config.name}) created in ${r.root}\n` +
            `url:   ${url}\n` +
            `token: ${r.adminToken}\n` +
            `The admin token is shown only this once; it is also in ${r.paths.adminToken} (mode 0600).\n` +
            `Start the site with: sitecast site start ${r.root}\n`,
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
        io.stdout(`site server listening at ${running.url}\n`);
        const signal = await untilSignal();
        io.stdout(`${signal}: stopping\n`);
        await running.close();
        io.stdout('stopped\n');
        return 0;
      }, false),
    );
}
