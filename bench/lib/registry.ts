import { readdir } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { Suite } from './types.js';

function isSuite(value: unknown): value is Suite {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['name'] === 'string' && typeof v['run'] === 'function';
}

/**
 * Every `suites/<name>.js` that exports `suite`. Only files directly in the
 * folder count, so a suite may keep its helpers in `suites/<name>/`.
 */
export async function loadSuites(suitesDir: string): Promise<Suite[]> {
  const files = (await readdir(suitesDir, { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => e.name)
    .sort();
  const suites: Suite[] = [];
  for (const file of files) {
    const mod: unknown = await import(pathToFileURL(join(suitesDir, file)).href);
    const exported = (mod as Record<string, unknown>)['suite'];
    if (!isSuite(exported)) throw new Error(`bench/suites/${file} does not export \`suite\``);
    suites.push(exported);
  }
  return suites;
}
