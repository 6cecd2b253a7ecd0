import { Command, CommanderError } from 'commander';
import type { Run } from './content.js';
import { WAIT_ERROR_EXIT, processIo, reportError, usage, type Io } from './output.js';

export const VERSION = '0.1.0';

type Register = (program: Command, io: Io, run: Run) => void;

/**
 * Command groups by their top-level words, loaded only when named: each group
 * pulls in its own dependencies (the database layer, zstd, the HTTP client),
 * and a command should not pay to load the others. Help and an unknown word
 * load every group, so the listing and the errors are complete; `--version`
 * alone loads none.
 */
const GROUPS: { words: string[]; load: () => Promise<Register[]> }[] = [
  { words: ['content'], load: async () => [(await import('./content.js')).registerContent] },
  {
    words: ['site'],
    load: async () => [(await import('./site.js')).registerSite, (await import('./demo.js')).registerDemo],
  },
  { words: ['dp'], load: async () => [(await import('./dp.js')).registerDp] },
  { words: ['token'], load: async () => [(await import('./token.js')).registerToken] },
  { words: ['package'], load: async () => [(await import('./package.js')).registerPackage] },
  { words: ['status'], load: async () => [(await import('./status.js')).registerStatus] },
  { words: ['address'], load: async () => [(await import('./address.js')).registerAddress] },
  { words: ['courier'], load: async () => [(await import('./courier.js')).registerCourier] },
  { words: ['lab'], load: async () => [(await import('./lab.js')).registerLab] },
  {
    words: ['client', 'collection', 'advertise', 'advertisement', 'boundary'],
    load: async () => [(await import('./clients.js')).registerClients],
  },
];

async function commandGroups(argv: string[]): Promise<Register[]> {
  const word = argv.find((a) => !a.startsWith('-'));
  const group = GROUPS.find((g) => word !== undefined && g.words.includes(word));
  const chosen = group ? [group] : GROUPS;
  return (await Promise.all(chosen.map((g) => g.load()))).flat();
}

/**
 * The `sitecast` command. Returns the exit code: 0 success, 1 failure (or
 * "something is bad" where a command says so), 2 usage error.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  // The version alone needs no command group loaded (loading them all costs a quarter of a second).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
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
  for (const register of await commandGroups(argv)) register(program, io, run);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return usageExit(argv);
    }
    reportError(io, usage(err instanceof Error ? err.message : String(err)), false);
    return usageExit(argv);
  }
  return exitCode;
}

/** `package wait` keeps 2 for its timeout: its usage errors exit 3, like its other errors. */
function usageExit(argv: readonly string[]): number {
  const words = argv.filter((a) => !a.startsWith('-'));
  return words[0] === 'package' && words[1] === 'wait' ? WAIT_ERROR_EXIT : 2;
}

function isUsage(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === 'SITECAST_E_USAGE';
}
