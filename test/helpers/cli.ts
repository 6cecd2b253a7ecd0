import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `sitecast` command in this process, as a user would type it, and
 * collects what it prints. The environment is `env` only (none by default),
 * never the test process's; `null` leaves it unset, so commands fall back to
 * what they do without one.
 */
export async function runCli(args: string[], env: Record<string, string> | null = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), interactive: false, ...(env === null ? {} : { env }) };
  const code = await main(args, io);
  return { code, stdout, stderr };
}
