import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Compiled to dist/bench/lib/paths.js, so the repository is three levels up. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Fetched data and scratch folders; gitignored, kept between runs. */
export const dataDir = join(repoRoot, 'bench', '.data');

export const resultsDir = join(repoRoot, 'bench', 'results');

/** The CLI under test, run the way a user runs it; BENCH_SITECAST_BIN points at another build to compare. */
export const sitecastBin = process.env['BENCH_SITECAST_BIN'] ?? join(repoRoot, 'bin', 'sitecast.js');
