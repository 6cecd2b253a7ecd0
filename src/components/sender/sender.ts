import type { SiteKeyPair } from '../../site/keys.js';
import type { SendRequest, SenderKind } from '../../formats/srq.js';
import type { Limit, Throttle } from './throttle.js';

/**
 * The one interface every way of moving a file to another site implements
 * (http, lan, courier). A sender delivers `file` so that it appears whole,
 * with the request's SHA-256, as `<id>.bundle` in the target's
 * `despoolr.box/receive/`, or (courier) as a parcel the target imports. It
 * resumes what an earlier attempt left, reports progress, honours the
 * throttle, and stops when `signal` aborts. Any failure rejects; the caller
 * retries later.
 */
export interface Sender {
  readonly kind: SenderKind;
  send(req: SendRequest, file: string, progress: ProgressFn, signal: AbortSignal): Promise<void>;
}

export interface SendProgress {
  /** Bytes of the file the target holds or has been given in this attempt (resumed bytes included). */
  sent: number;
  total: number;
  /** Bytes that crossed the link since the previous report: headers, resent parts and framing included. */
  wireBytes: number;
}
export type ProgressFn = (p: SendProgress) => void;

/** Where a target site receives: its base URL (http) and/or a folder (lan: its receive folder; courier: where parcels go). */
export interface SendTarget {
  code: string;
  url: string | null;
  path: string | null;
}

export interface SenderDeps {
  /** This site's code, named to the target. */
  from: string;
  keys: SiteKeyPair;
  target: SendTarget;
  throttle: Throttle;
  /** The limit in force, read when a sender sizes its slices. */
  limit: () => Limit;
  /** http part size (default 1 MiB). */
  partBytes?: number;
}

export type SenderFactory = (deps: SenderDeps) => Sender;

/** Reads `n` bytes of a file in slices no larger than the throttle allows, asking the throttle before each. */
export function sliceBounds(offset: number, end: number, slice: number): [number, number][] {
  const out: [number, number][] = [];
  for (let at = offset; at < end; at += slice) out.push([at, Math.min(end, at + slice)]);
  return out;
}
