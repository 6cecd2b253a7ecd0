import { SingleBar, Presets } from 'cli-progress';
import type { ProgressFn } from '../content/types.js';
import type { Io } from './output.js';

/**
 * A progress bar on stderr when it is a terminal; nothing when piped or with
 * --json, so scripts see clean output. Returns the callback and a stop().
 */
export function progressBar(io: Io, label: string, enabled: boolean): { onProgress?: ProgressFn; stop: () => void } {
  if (!enabled || !io.interactive) return { stop: () => undefined };
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total}`, hideCursor: true, clearOnComplete: true, stream: process.stderr },
    Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (done, total) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
