import { Command, CommanderError } from 'commander';
import { registerClients } from './clients.js';
import { registerAddress } from './address.js';
import { registerContent, type Run } from './content.js';
import { registerCourier } from './courier.js';
import { registerDemo } from './demo.js';
import { registerDp } from './dp.js';
import { registerPackage } from './package.js';
import { registerSite } from './site.js';
import { registerStatus } from './status.js';
import { processIo, reportError, usage, type Io } from './output.js';

export const VERSION = '0.1.0';

/**
 * The `sitecast` command. Returns the exit code: 0 success, 1 failure (or
 * "something is bad" where a command says so), 2 usage error.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('sitecast')
    .description('Sitecast: software distribution across a hierarchy of sites')
    .version(VERSION)
    // Root options (--version) only before the command, so `package create --version 9.0` reaches the command.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');

  const run: Run = async (action, json) => {
    try {
      exitCode = await action();
    } catch (err) {
      reportError(io, err, json);
      exitCode = isUsage(err) ? 2 : 1;
    }
  };
  registerContent(program, io, run);
  registerSite(program, io, run);
  registerDemo(program, io, run);
  registerDp(program, io, run);
  registerPackage(program, io, run);
  registerStatus(program, io, run);
  registerAddress(program, io, run);
  registerCourier(program, io, run);
  registerClients(program, io, run);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    reportError(io, usage(err instanceof Error ? err.message : String(err)), false);
    return 2;
  }
  return exitCode;
}

function isUsage(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === 'SITECAST_E_USAGE';
}
