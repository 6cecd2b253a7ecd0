import type { Command } from 'commander';
import { ROUTES, issuedTokenSchema, newTokenBodySchema, revokedTokenSchema, tokenListSchema, tokenParamsSchema } from '../components/provider/contract.js';
import { type SiteFlags, callSite, checkFlags, resolveTarget, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';
import { table } from './table.js';

/** `sitecast token …`: bearer tokens of the admin API (admin tokens only may manage them). */
export function registerToken(program: Command, io: Io, run: Run): void {
  const token = program.command('token').description('bearer tokens of the admin API: create, list, revoke');

  withSiteFlags(token.command('create').description('issue a token with a role; its secret is printed this once'))
    .requiredOption('--role <role>', 'admin (may change things) or read-only (may look)')
    .option('--label <text>', 'what the token is for, shown by `token list`')
    .option('--json', 'print one JSON object')
    .action((opts: SiteFlags & { role: string; label?: string; json?: boolean }) =>
      run(async () => {
        const body = checkFlags(newTokenBodySchema, { role: opts.role, ...(opts.label === undefined ? {} : { label: opts.label }) }, '--role/--label');
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'POST', path: ROUTES.createToken.url, body }, issuedTokenSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`token ${r.id} (${r.role}${r.label === null ? '' : `, ${r.label}`}):\n${r.token}\nIt is shown only this once; the site keeps its SHA-256.\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(token.command('list').description('every token: id, role, label, creation time (never the secret)'))
    .option('--json', 'print one JSON object')
    .action((opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'GET', path: ROUTES.listTokens.url }, tokenListSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(table(['ID', 'ROLE', 'LABEL', 'CREATED'], r.tokens.map((x) => [x.id, x.role, x.label ?? '', x.createdAt])));
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(token.command('revoke').description('revoke a token at once (not the last admin token)'))
    .argument('<id>', 'token id, from `token list`')
    .option('--json', 'print one JSON object')
    .action((id: string, opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const params = checkFlags(tokenParamsSchema, { id }, '<id>');
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'POST', path: ROUTES.revokeToken.url.replace(':id', params.id) }, revokedTokenSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`token ${r.id} revoked\n`);
        return 0;
      }, Boolean(opts.json)),
    );
}
