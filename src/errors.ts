/**
 * One error type for the whole product. The code is stable (scripts and the
 * HTTP layer key on it); the message says what happened in words a person can
 * act on; the hint, when present, says what to do next.
 */
export const ERROR_CODES = {
  SITECAST_E_USAGE: 'The command line is not valid.',
  SITECAST_E_IO: 'A file-system operation failed (disk full, permission denied, …).',
  SITECAST_E_NOT_FOUND: 'A named thing (manifest, chunk, file, package) does not exist.',
  SITECAST_E_UNSAFE_PATH: 'A path would escape its tree: `..`, absolute, through a file or a link, or duplicated.',
  SITECAST_E_SPECIAL_FILE: 'A source tree holds a fifo, socket or device, or a link out of the tree.',
  SITECAST_E_BAD_MANIFEST: 'A manifest does not parse or breaks a rule.',
  SITECAST_E_BAD_ARCHIVE: 'A package archive or delta is truncated, corrupt or not an archive.',
  SITECAST_E_UNSUPPORTED_FORMAT: 'A file uses a format version this build does not read.',
  SITECAST_E_CORRUPT_CHUNK: 'Stored or received data does not match its SHA-256.',
  SITECAST_E_MISSING_BASE: 'A delta was applied to a library that does not hold its base version.',
  SITECAST_E_LIBRARY: 'The content library folder is missing or not a library.',
  SITECAST_E_UNSAFE_NAME: 'A file name for an inbox has a separator, `..`, a leading dot or a character outside [A-Za-z0-9._-].',
  SITECAST_E_BAD_INBOX_FILE: 'An inbox file does not parse or fails a check; it was moved to bad/.',
  SITECAST_E_INVALID_VALUE: 'A value fails its check (unknown priority, malformed package id or site code, …).',
  SITECAST_E_CONFLICT: 'The thing to create already exists (a DP, a site), or a reference points at nothing.',
  SITECAST_E_ROLLBACK: 'A source version older than the one already held was offered.',
  SITECAST_E_ID_EXHAUSTED: 'The site has used all 1,048,576 package ids.',
  SITECAST_E_DB: 'The site database failed or stayed locked.',
  SITECAST_E_DB_TOO_NEW: 'The site database was written by a newer Sitecast (its schema version is unknown here).',
  SITECAST_E_SITE_EXISTS: 'A site root cannot be created in a folder that is not empty.',
  SITECAST_E_SITE_CONFIG: 'A folder is not a site root, or its site.json is invalid.',
  SITECAST_E_SITE_RUNNING: 'A site server already runs on this site root (its `site.lock` names the process).',
  SITECAST_E_BUSY: 'The site content library stayed in use by a collection of old versions longer than `site backup` waits.',
  SITECAST_E_CLOSED: 'A component or database was used after it was closed.',
  SITECAST_E_UNAUTHORIZED: 'The admin API was called without a bearer token, or with one that is not valid.',
  SITECAST_E_FORBIDDEN: 'A read-only token was used for a call that changes something.',
  SITECAST_E_SITE_DOWN: 'No site server answers at the address the CLI was given.',
  SITECAST_E_HTTP: 'A site server answered with something that is not a valid admin API response.',
  SITECAST_E_BAD_SIGNATURE: 'A signed message (client request, policy, bundle from another site) does not verify, or is too old.',
  SITECAST_E_BAD_BUNDLE: 'A bundle from another site is truncated, malformed, or not addressed to this site.',
  SITECAST_E_UNKNOWN_SITE: 'A bundle or request names a site this site does not know (no public key to check it with).',
  SITECAST_E_JOIN_REFUSED: 'A join token was refused: unknown, already used, expired, or issued for another site code.',
  SITECAST_E_CLIENT_STATE: 'A client state folder is missing, incomplete or corrupt.',
  SITECAST_E_UNTRUSTED_KEY: 'A management point answered with a site key that is not one the client was told to trust (`client register --site-key`).',
  SITECAST_E_DOWNLOAD: 'No distribution point could provide the content of a package.',
  SITECAST_E_SEND: 'A transfer to another site failed: it cannot be reached, refused the request, or the file to send is missing.',
  SITECAST_E_BAD_PARCEL: 'A courier parcel is truncated, corrupt, addressed to another site, or not a parcel.',
  SITECAST_E_BAD_BACKUP: 'A site backup is truncated, corrupt, not a backup, or restores into an incomplete site.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface SitecastErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class SitecastError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: SitecastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SitecastError';
    this.code = code;
    this.hint = options.hint;
  }
}

export function isSitecastError(value: unknown, code?: ErrorCode): value is SitecastError {
  return value instanceof SitecastError && (code === undefined || value.code === code);
}

/** Wraps a Node.js system error (ENOSPC, EACCES, …) into a product error naming the operation. */
export function ioError(what: string, cause: unknown): SitecastError {
  const sys = cause as NodeJS.ErrnoException | undefined;
  const errno = sys?.code ? ` (${sys.code})` : '';
  const hint =
    sys?.code === 'ENOSPC'
      ? 'free space on that file system and try again; nothing half-written was kept'
      : sys?.code === 'EACCES' || sys?.code === 'EPERM'
        ? 'check the permissions of that folder; nothing half-written was kept'
        : undefined;
  return new SitecastError('SITECAST_E_IO', `${what}${errno}: ${sys?.message ?? String(cause)}`, {
    ...(hint === undefined ? {} : { hint }),
    cause,
  });
}
