import type { Command } from 'commander';
import type { Run } from './content.js';
import type { Io } from './output.js';

interface LabOpts {
  sites?: string;
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

/** `sitecast lab`: a hierarchy of real site server processes on this machine, with a sample package on every DP, until Ctrl-C. */
export function registerLab(program: Command, io: Io, run: Run): void {
  program
    .command('lab')
    .description('run a hierarchy on this machine (default CEN → PRI → SEC, one DP each, http senders on loopback), send a sample package to every DP, print the timeline; until Ctrl-C')
    .option('--sites <codes>', 'site codes, top first, separated by commas', 'CEN,PRI,SEC')
    .option('--dir <dir>', 'folder for the lab (kept; run again to start the same lab and send an update); default a temporary folder removed on exit')
    .option('--keep', 'keep the temporary folder on exit')
    .action((opts: LabOpts) =>
      run(async () => {
        // Loaded here so that every other command starts without the lab and its dependencies.
        const { describeExit, describeLab, distributeSample, parseSiteList, startLab } = await import('../site/lab.js');
        const sites = parseSiteList(opts.sites ?? 'CEN,PRI,SEC');
        const stopped = untilSignal();
        const lab = await startLab({
          sites,
          ...(opts.dir === undefined ? {} : { dir: opts.dir }),
          ...(opts.keep === undefined ? {} : { keep: opts.keep }),
          log: (line) => io.stderr(`${line}\n`),
        });
        let failed = false;
        try {
          io.stderr('sending the sample package to every DP\n');
          const timeline = await Promise.race([distributeSample(lab), stopped.then(() => undefined)]);
          if (timeline !== undefined) {
            io.stdout(describeLab(lab, timeline));
            await stopped;
          }
          io.stdout('stopping\n');
        } catch (err) {
          failed = true;
          throw err;
        } finally {
          const exits = await lab.close();
          const line = exits.map((e) => `${e.code} ${describeExit(e.exit)}`).join(', ');
          if (failed) io.stderr(`site servers stopped: ${line}\n`);
          else io.stdout(`stopped: ${line}\n`);
          if (exits.some((e) => e.exit.code !== 0)) failed = true;
        }
        return failed ? 1 : 0;
      }, false),
    );
}
