import { SitecastError, isSitecastError } from '../errors.js';
import type { SiteDb } from './open.js';

/**
 * Runs one repository operation and turns driver errors into product errors.
 * Constraint violations are answered in the caller's words (`what`), so the
 * message names the object rather than an SQL constraint.
 */
export async function guard<T>(site: SiteDb, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isSitecastError(err)) throw err;
    switch (site.dialect.classifyError(err)) {
      case 'unique':
        throw new SitecastError('SITECAST_E_CONFLICT', `${what}: it already exists`, { cause: err });
      case 'foreign_key':
        throw new SitecastError('SITECAST_E_CONFLICT', `${what}: it refers to a site, DP or package that does not exist`, {
          cause: err,
        });
      case 'check':
        throw new SitecastError('SITECAST_E_INVALID_VALUE', `${what}: a value breaks a rule of the database`, { cause: err });
      case 'busy':
        throw new SitecastError('SITECAST_E_DB', `${what}: the site database stayed locked`, {
          hint: 'another process holds a long write; try again',
          cause: err,
        });
      default:
        throw new SitecastError('SITECAST_E_DB', `${what}: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
    }
  }
}
