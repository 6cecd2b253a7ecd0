import { startSite } from '../../../src/site/server.js';

/**
 * A site server for the scale bench, in a process of its own (so the load
 * generator never shares its event loop): the real server, every component
 * but Distribution Manager, which would consume the wake-up files the bench
 * counts. Prints `listening at <url>`; stops on SIGTERM.
 */
const root = process.argv[2];
if (root === undefined) {
  process.stderr.write('usage: site-child.js <site root>\n');
  process.exit(2);
}
const site = await startSite(root, { without: ['distmgr'] });
process.stdout.write(`listening at ${site.url}\n`);
process.once('SIGTERM', () => {
  site.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
});
