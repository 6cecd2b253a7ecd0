import type { Command } from 'commander';
import { ROUTES, messageListSchema, messagesQuerySchema } from '../components/provider/contract.js';
import { type SiteFlags, callSite, checkFlags, resolveTarget, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';
import { table } from './table.js';

interface MessagesOpts extends SiteFlags {
  component?: string;
  package?: string;
  severity?: string;
  since?: string;
  limit?: string;
  json?: boolean;
}

/** `sitecast status …`: status messages of the site. */
export function registerStatus(program: Command, io: Io, run: Run): void {
  const status = program.command('status').description('status messages');

  withSiteFlags(status.command('messages').description('status messages, newest first'))
    .option('--component <c>', 'only this component: dbmon (or smsdbmon), distmgr, inboxmgr, replmgr, scheduler, sender, despooler, statmgr, mp, provider')
    .option('--package <id>', 'only this package')
    .option('--severity <s>', 'only this severity and worse: info, warning, error')
    .option('--since <time>', 'only messages at or after this ISO time')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--json', 'print one JSON object')
    .action((opts: MessagesOpts) =>
      run(async () => {
        const query = new URLSearchParams();
        for (const key of ['component', 'package', 'severity', 'since', 'limit'] as const) {
          const value = opts[key];
          if (value !== undefined) query.set(key, value);
        }
        checkFlags(messagesQuerySchema, Object.fromEntries(query), 'status messages');
        const target = await resolveTarget(opts, io.env ?? {});
        const path = `${ROUTES.statusMessages.url}${query.size > 0 ? `?${query.toString()}` : ''}`;
        const r = await callSite(target, { method: 'GET', path }, messageListSchema);
        if (opts.json) printJson(io, r);
        else if (r.messages.length === 0) io.stdout('no status messages\n');
        else
          io.stdout(
            table(
              ['TIME', 'SEVERITY', 'SITE', 'COMPONENT', 'PACKAGE', 'TEXT'],
              r.messages.map((m) => [m.time, m.severity, m.site, m.component, m.packageId ?? '-', m.text.replace(/\s+/g, ' ')]),
            ),
          );
        return 0;
      }, Boolean(opts.json)),
    );
}
