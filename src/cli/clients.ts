import type { Command } from 'commander';
import { z } from 'zod';
import { type PassResult, runLoop, runPass } from '../client/agent.js';
import { registerAgent } from '../client/register.js';
import { keyFingerprint, keyFingerprintSchema } from '../formats/client-protocol.js';
import { hostname } from 'node:os';
import { checkFlags, collect } from './client.js';
import { registerCollections } from './collections.js';
import type { Run } from './content.js';
import { printJson, type Io } from './output.js';

const urlSchema = z.url({ protocol: /^https?$/ }).max(2048);

function describe(r: PassResult): string {
  if (!r.approved) return `client ${r.client}: waiting for approval by site ${r.site}\n`;
  if (r.advertisements.length === 0) return `client ${r.client}: nothing to run\n`;
  return r.advertisements
    .map((a) => `${a.id} ${a.packageId} ${a.program}: ${a.outcome}${a.exitCode === null ? '' : ` (exit code ${a.exitCode})`}${a.message === undefined ? '' : `: ${a.message}`}\n`)
    .join('');
}

/** `sitecast client …` (the agent on a machine), plus the admin commands of collections.ts. */
export function registerClients(program: Command, io: Io, run: Run): void {
  const client = program.command('client').description('the client agent: register with a management point, run what is advertised');

  client
    .command('register')
    .description('create this client\'s key pair and register it with a site\'s management point')
    .requiredOption('--mp <site url>', 'base URL of the site server, e.g. http://site:8430')
    .requiredOption('--state <dir>', 'the client\'s state folder (keys, cache, runs)')
    .option('--name <n>', 'client name (default: host name)')
    .option('--site-key <sha256:hex>', 'trust only this site key (repeatable: one per site the client may be sent on to); sitecast site init prints it. Default: the key the MP sends is trusted on first use', collect)
    .option('--json', 'print one JSON object')
    .action((opts: { mp: string; state: string; name?: string; siteKey?: string[]; json?: boolean }) =>
      run(async () => {
        const mp = checkFlags(urlSchema, opts.mp, '--mp');
        const trusted = opts.siteKey === undefined ? undefined : opts.siteKey.map((k) => checkFlags(keyFingerprintSchema, k, '--site-key'));
        const r = await registerAgent(opts.state, mp, opts.name ?? hostname(), trusted);
        const siteKey = keyFingerprint(r.identity.siteKey);
        const out = { clientId: r.identity.clientId, name: r.identity.name, site: r.identity.site, mp: r.identity.mp, approved: r.approved, siteKey, siteKeyPinned: trusted !== undefined };
        if (opts.json) printJson(io, out);
        else {
          io.stdout(`client ${out.clientId} registered with site ${out.site} at ${out.mp}${out.approved ? '' : ' (waiting for approval)'}\n`);
          io.stdout(`site key ${siteKey}${trusted === undefined ? ' (trusted on first use; pin it with --site-key)' : ' (pinned)'}\n`);
        }
        return 0;
      }, Boolean(opts.json)),
    );

  client
    .command('run')
    .description('poll the management point and run what is advertised (until SIGTERM, or once)')
    .requiredOption('--state <dir>', 'the client\'s state folder')
    .option('--once', 'one pass, then exit (exit code 1 if a program failed)')
    .option('--interval <seconds>', 'seconds between polls (default: what the site said), ±20 % jitter')
    .option('--json', 'print one JSON object per pass')
    .action((opts: { state: string; once?: boolean; interval?: string; json?: boolean }) =>
      run(async () => {
        const interval = opts.interval === undefined ? undefined : checkFlags(z.coerce.number().min(0.1).max(86_400), opts.interval, '--interval');
        const print = (r: PassResult): void => (opts.json ? printJson(io, r) : io.stdout(describe(r)));
        if (opts.once) {
          const r = await runPass(opts.state);
          print(r);
          return r.advertisements.some((a) => a.outcome === 'failed' || a.outcome === 'download-failed') ? 1 : 0;
        }
        const stop = new AbortController();
        const onSignal = (): void => stop.abort();
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
        try {
          await runLoop(opts.state, {
            ...(interval === undefined ? {} : { intervalSeconds: interval }),
            signal: stop.signal,
            onPass: (r) => {
              if (opts.json || r.advertisements.some((a) => a.outcome !== 'already-run')) print(r);
            },
            onError: (err) => io.stderr(`${err instanceof Error ? err.message : String(err)}\n`),
          });
        } finally {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
        return 0;
      }, Boolean(opts.json)),
    );

  registerCollections(program, client, io, run);
}
