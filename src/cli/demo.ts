import type { Command } from 'commander';
import type { Run } from './content.js';
import type { Io } from './output.js';

interface DemoOpts {
  dir?: string;
  keep?: boolean;
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

/** `sitecast site demo`: a ready-to-try site with one DP and one installed package, until Ctrl-C. */
export function registerDemo(program: Command, io: Io, run: Run): void {
  const site = program.commands.find((c) => c.name() === 'site') ?? program.command('site').description('create and run a site server');
  site
    .command('demo')
    .description('run a demo site (code DEM, a free loopback port) with one DP and one installed sample package, until Ctrl-C')
    .option('--dir <dir>', 'folder for the demo (kept; run again to reuse it); default a temporary folder removed on exit')
    .option('--keep', 'keep the temporary folder on exit')
    .action((opts: DemoOpts) =>
      run(async () => {
        // Loaded here so that every other command starts without the server and its components.
        const { describeDemo, startDemo } = await import('../site/demo.js');
        const stopped = untilSignal();
        const demo = await startDemo({
          ...(opts.dir === undefined ? {} : { dir: opts.dir }),
          ...(opts.keep === undefined ? {} : { keep: opts.keep }),
          log: (line) => io.stderr(`${line}\n`),
        });
        io.stdout(describeDemo(demo));
        const signal = await stopped;
        io.stdout(`${signal}: stopping\n`);
        await demo.close();
        io.stdout('stopped\n');
        return 0;
      }, false),
    );
}
