/* global fetch, sessionStorage */
/**
 * The console talks to the site only through the admin API (the provider),
 * with the token the administrator signed in with. The token lives in
 * sessionStorage: it goes away with the tab.
 */

const KEY = 'sitecast.token';

export class ApiError extends Error {
  constructor(status, code, message, hint) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

let unauthorized = () => {};

export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set token(value) {
    if (value === null) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, value);
  },
};

/** Called when the site refuses the token (expired, revoked, mistyped): the app goes back to sign-in. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function api(method, path, body) {
  const token = session.token;
  const headers = { accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch {
    throw new ApiError(0, 'SITECAST_E_SITE_DOWN', 'the site server does not answer', 'is it running?');
  }
  const text = await res.text();
  let json;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    json = {};
  }
  if (!res.ok) {
    const e = json.error ?? {};
    const err = new ApiError(res.status, e.code ?? 'SITECAST_E_HTTP', e.message ?? `the site answered HTTP ${res.status}`, e.hint);
    if (res.status === 401) unauthorized(err);
    throw err;
  }
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body);

/** Text for a failed call, as an administrator should read it. */
export function describe(err) {
  if (err instanceof ApiError) return `${err.message}${err.hint ? ` (${err.hint})` : ''} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}
