import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

/** True when this process may mount file systems (root); the fault tests that need a small or read-only disk skip otherwise. */
export const canMount = process.getuid?.() === 0;

/** Why a fault test is skipped here, or false when it runs. SITECAST_TEST_REQUIRE_MOUNT (CI sets it when it can mount) turns a skip into a failure. */
export function mountSkip(): string | false {
  if (canMount) return false;
  if (process.env.SITECAST_TEST_REQUIRE_MOUNT !== undefined) throw new Error('SITECAST_TEST_REQUIRE_MOUNT is set but the tests do not run as root');
  return 'needs root to mount a small tmpfs';
}

/**
 * Mounts a tmpfs of `size` (e.g. "2m") at `dir` (created) and returns the
 * function that unmounts it, or undefined when mounting is refused (the test
 * then skips), unless SITECAST_TEST_REQUIRE_MOUNT is set. Unmount before the
 * test's temporary folder is removed (after-hooks run in the order they were added).
 */
export async function mountTmpfs(dir: string, size: string): Promise<(() => void) | undefined> {
  await mkdir(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (process.env.SITECAST_TEST_REQUIRE_MOUNT !== undefined) throw new Error(`SITECAST_TEST_REQUIRE_MOUNT is set but mount failed: ${r.stderr.trim()}`);
    return undefined;
  }
  return () => void spawnSync('umount', ['-l', dir]);
}
