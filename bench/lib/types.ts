/**
 * Contracts of the benchmark harness. A suite is a file `bench/suites/<name>.ts`
 * exporting `suite: Suite`; the runner finds it by listing that folder.
 */

/** The result of one measurement that may fail without stopping the suite. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** `bytes` are shown as MB (10^6); `MB/s` is 10^6 bytes per second; `ms` for latencies. */
export type Unit = 'bytes' | 'MB/s' | 's' | 'ms' | 'MiB';

/**
 * What a row must reach. `ratio` compares ours / reference (figures measured
 * side by side in the same run); `value` compares our figure alone, for
 * absolute limits such as peak memory.
 */
export interface Goal {
  on: 'ratio' | 'value';
  op: '>=' | '<=';
  target: number;
}

export interface RowInput {
  /** Stable identifier, used as the key in the JSON results. */
  id: string;
  label: string;
  unit: Unit;
  ours: Outcome<number>;
  reference?: { name: string; value: Outcome<number> };
  /** Without a goal the row is context only and never fails. */
  goal?: Goal;
  /** Individual runs behind a median, in the row's unit. */
  samples?: number[];
  referenceSamples?: number[];
  note?: string;
}

export type RowStatus = 'pass' | 'fail' | 'info' | 'error';

export interface Row {
  suite: string;
  id: string;
  label: string;
  unit: Unit;
  ours: number | null;
  reference: number | null;
  referenceName: string | null;
  ratio: number | null;
  goal: string | null;
  status: RowStatus;
  error?: string;
  samples?: number[];
  referenceSamples?: number[];
  note?: string;
}

/** A finished child process: wall time measured around it, peak RSS by GNU time. */
export interface Measured {
  seconds: number;
  /** Peak resident set size of the largest process, in bytes. */
  peakRssBytes: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** Treat a non-zero exit as success (the caller inspects stdout). */
  allowFailure?: boolean;
}

export interface BenchContext {
  readonly suite: string;
  readonly repoRoot: string;
  /** How many runs a median is taken over. */
  readonly runs: number;
  /** Fetches `name@version` from the npm registry once; returns its unpacked `package/` folder. */
  data(spec: string): Promise<string>;
  /** A fresh empty folder on the same disk as the data, removed after the suite. */
  tempDir(name: string): Promise<string>;
  /** Runs a program under GNU time; throws on a non-zero exit with the stderr tail. */
  run(cmd: string, args: string[], options?: RunOptions): Promise<Measured>;
  /** Runs a bash script (pipelines, with pipefail), measured the same way. */
  sh(script: string, options?: RunOptions): Promise<Measured>;
  /**
   * Runs `prepare` (untimed) then `body` (timed) `runs` times; returns the
   * median seconds, every sample and what each run returned.
   */
  median<T>(prepare: () => Promise<void>, body: () => Promise<T>): Promise<Median<T>>;
  /** Like `median` for two sides, alternating reference and ours run by run; failures are caught per side. */
  paired<R, O>(reference: Side<R>, ours: Side<O>): Promise<{ reference: Outcome<Median<R>>; ours: Outcome<Median<O>> }>;
  /** Catches a failure into an Outcome so one broken figure never ends the suite. */
  attempt<T>(fn: () => Promise<T>): Promise<Outcome<T>>;
  record(row: RowInput): void;
  log(message: string): void;
}

/** One side of a timed comparison: `prepare` is untimed, `body` is timed. */
export interface Side<T> {
  prepare: () => Promise<void>;
  body: () => Promise<T>;
}

export interface Median<T> {
  seconds: number;
  samples: number[];
  /** What each timed run returned, in order. */
  values: T[];
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}
