import type { Command } from 'commander';
import { resolve } from 'node:path';
import { addressListSchema, addressSchema, type SetAddressBody } from '../components/provider/addresses-contract.js';
import { ROUTES } from '../components/provider/contract.js';
import { isSitecastError } from '../errors.js';
import { parsePulse, parseRate, parseWindow } from '../formats/schedule.js';
import { callSite, collect, resolveTarget, type SiteFlags, withSiteFlags } from './client.js';
import type { Run } from './content.js';
import { printJson, usage, type Io } from './output.js';
import { table } from './table.js';

interface SetOpts extends SiteFlags {
  to: string;
  sender?: string;
  path?: string;
  rate?: string[];
  pulse?: string;
  window?: string[];
  maxConcurrent?: string;
  retries?: string;
  retryDelay?: string;
  pause?: boolean;
  resume?: boolean;
  json?: boolean;
}


function int(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw usage(`${flag} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`);
  return n;
}

/** Parses every value here first, so a bad window or rate is a usage error (exit 2) naming it, and nothing is sent. */
function body(opts: SetOpts): SetAddressBody {
  const check = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (isSitecastError(err)) throw usage(err.message);
      throw err;
    }
  };
  if (opts.sender !== undefined && !['http', 'lan', 'courier'].includes(opts.sender)) throw usage(`--sender ${JSON.stringify(opts.sender)}: expected http, lan or courier`);
  if (opts.pause === true && opts.resume === true) throw usage('--pause and --resume together');
  if (opts.pulse !== undefined && opts.rate !== undefined && opts.pulse.trim().toLowerCase() !== 'off') throw usage('--rate and --pulse together: an address is in rate mode or in pulse mode');
  for (const w of opts.window ?? []) check(() => parseWindow(w));
  for (const r of opts.rate ?? []) check(() => parseRate(r));
  if (opts.pulse !== undefined) check(() => parsePulse(opts.pulse ?? ''));
  const retryDelay = opts.retryDelay === undefined ? undefined : Number(opts.retryDelay);
  if (retryDelay !== undefined && (!Number.isFinite(retryDelay) || retryDelay < 0 || retryDelay > 86_400)) {
    throw usage(`--retry-delay ${JSON.stringify(opts.retryDelay)}: expected seconds from 0 to 86400`);
  }
  const maxConcurrent = int('--max-concurrent', opts.maxConcurrent, 1, 64);
  const retries = int('--retries', opts.retries, 0, 1000);
  return {
    ...(opts.sender === undefined ? {} : { sender: opts.sender as 'http' | 'lan' | 'courier' }),
    ...(opts.path === undefined ? {} : { path: resolve(opts.path) }),
    ...(opts.window === undefined ? {} : { windows: opts.window }),
    ...(opts.rate === undefined ? {} : { rates: opts.rate }),
    ...(opts.pulse === undefined ? {} : { pulse: opts.pulse }),
    ...(maxConcurrent === undefined ? {} : { maxConcurrent }),
    ...(retries === undefined ? {} : { retries }),
    ...(retryDelay === undefined ? {} : { retryDelay }),
    ...(opts.pause === true ? { paused: true } : opts.resume === true ? { paused: false } : {}),
  };
}

function rateText(bytesPerSecond: number): string {
  return bytesPerSecond === 0 ? '-' : `${(bytesPerSecond / 1024).toFixed(1)} KB/s`;
}

/** `sitecast address …`: how this site sends to each target site. */
export function registerAddress(program: Command, io: Io, run: Run): void {
  const address = program.command('address').description('addresses: how, when and how fast this site sends to each target site');

  withSiteFlags(
    address
      .command('set')
      .description('create or change the address of a target site; flags left out keep their value')
      .requiredOption('--to <site>', 'target site code')
      .option('--sender <kind>', 'http, lan or courier')
      .option('--path <dir>', 'lan: the target\'s despoolr.box/receive folder; courier: where parcels are written')
      .option('--rate <rate>', '"<n>KB/s" or "unlimited", optionally after "HH-HH " (repeatable, in order)', collect)
      .option('--pulse <KB:seconds>', 'pulse mode: send a block of KB, then wait; "off" for rate mode')
      .option('--window <window>', '"<days> <HH-HH> <all|medium|high|closed>" (repeatable, applied in order)', collect)
      .option('--max-concurrent <n>', 'sendings at once to this site')
      .option('--retries <n>', 'quick retries before a request is marked failed')
      .option('--retry-delay <seconds>', 'first retry delay; doubles at each failure')
      .option('--pause', 'hold every request to this site')
      .option('--resume', 'stop holding'),
  )
    .option('--json', 'print one JSON object')
    .action((opts: SetOpts) =>
      run(async () => {
        const b = body(opts);
        const target = await resolveTarget(opts, io.env ?? {});
        const path = ROUTES.setAddress.url.replace(':to', encodeURIComponent(opts.to));
        const r = await callSite(target, { method: 'PUT', path, body: b }, addressSchema);
        if (opts.json) printJson(io, r);
        else io.stdout(`address ${r.to} set: ${r.sender}${r.path === null ? '' : ` ${r.path}`}, at most ${r.maxConcurrent} at once${r.paused ? ', paused' : ''}\n`);
        return 0;
      }, Boolean(opts.json)),
    );

  withSiteFlags(address.command('status').description('each address: queued and sending requests, bytes sent, current rate, last error'))
    .option('--json', 'print one JSON array')
    .action((opts: SiteFlags & { json?: boolean }) =>
      run(async () => {
        const target = await resolveTarget(opts, io.env ?? {});
        const r = await callSite(target, { method: 'GET', path: ROUTES.listAddresses.url }, addressListSchema);
        const rows = r.addresses.map((a) => ({ to: a.to, queued: a.queued, sending: a.sending, bytesSent: a.bytesSent, rate: Math.round(a.rate), lastError: a.lastError }));
        if (opts.json) printJson(io, rows);
        else if (rows.length === 0) io.stdout('no addresses; add one with `sitecast address set`\n');
        else io.stdout(table(['TO', 'QUEUED', 'SENDING', 'BYTES SENT', 'RATE', 'LAST ERROR'], rows.map((a) => [a.to, String(a.queued), String(a.sending), String(a.bytesSent), rateText(a.rate), a.lastError ?? '-'])));
        return 0;
      }, Boolean(opts.json)),
    );
}
