import { isSitecastError } from '../errors.js';
import { startSite } from './server.js';

/**
 * `node dist/src/site/main.js <root>`: runs one site server in the
 * foreground until SIGTERM or SIGINT, then shuts it down cleanly and exits 0
 * (1 when the start or the shutdown failed).
 */
async function run(argv: string[]): Promise<number> {
  const root = argv[0];
  if (root === undefined || argv.length > 1) {
    process.stderr.write('usage: node dist/src/site/main.js <site root>\n');
    return 2;
  }
  let site;
  try {
    site = await startSite(root);
  } catch (err) {
    process.stderr.write(`sitecast: cannot start the site server: ${describe(err)}\n`);
    return 1;
  }
  // Listen for the signal before saying we listen: whoever reads the line may stop us at once.
  const stopping = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.stdout.write(`site server listening at ${site.url}\n`);
  const signal = await stopping;
  process.stdout.write(`${signal}: stopping\n`);
  try {
    await site.close();
    return 0;
  } catch (err) {
    process.stderr.write(`sitecast: the site server did not stop cleanly: ${describe(err)}\n`);
    return 1;
  }
}

function describe(err: unknown): string {
  if (isSitecastError(err)) return `${err.code}: ${err.message}${err.hint === undefined ? '' : ` (${err.hint})`}`;
  if (err instanceof AggregateError) return `${err.message}: ${err.errors.map((e: unknown) => describe(e)).join('; ')}`;
  return err instanceof Error ? err.message : String(err);
}

process.exitCode = await run(process.argv.slice(2));
// Everything is closed by now; should a stray handle keep the loop alive, do not hang a service manager.
setTimeout(() => process.exit(), 3000).unref();
