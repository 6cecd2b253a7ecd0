/**
 * Contracts of the content engine: what a manifest is, what the library
 * offers. Other parts of Sitecast (Distribution Manager, Despooler, the client)
 * depend on these types, never on the implementation files.
 */

/** Lowercase hex SHA-256, 64 characters. */
export type Sha256Hex = string;

export interface ChunkRef {
  /** SHA-256 of the uncompressed chunk bytes; also its name in the store. */
  hash: Sha256Hex;
  /** Uncompressed size in bytes. */
  size: number;
}

export interface DirEntry {
  type: 'dir';
  path: string;
  mode: number;
}

export interface FileEntry {
  type: 'file';
  path: string;
  mode: number;
  size: number;
  /** SHA-256 of the whole file. */
  hash: Sha256Hex;
  chunks: ChunkRef[];
}

export interface SymlinkEntry {
  type: 'symlink';
  path: string;
  /** Relative target; resolved against the link's folder it stays inside the tree. */
  target: string;
}

export type ManifestEntry = DirEntry | FileEntry | SymlinkEntry;

/**
 * A package version: the whole tree. Entries are sorted by path (byte order);
 * paths are relative, `/`-separated, never `.` or `..` segments. The SHA-256 of
 * the canonical serialization identifies the version.
 */
export interface Manifest {
  format: 1;
  entries: ManifestEntry[];
}

export interface IngestResult {
  manifest: Sha256Hex;
  files: number;
  /** Bytes of file content in the tree. */
  bytes: number;
  /** Compressed bytes the tree's chunks occupy in the library (shared chunks counted once). */
  storedBytes: number;
  /** Compressed bytes this ingest added to the library (0 when everything was there). */
  newBytes: number;
  /** Files and folders whose set-user-ID, set-group-ID or sticky bit was not kept (only permission bits are). */
  modeBitsDropped: string[];
}

export interface VerifyProblem {
  chunk: Sha256Hex;
  problem: 'missing' | 'corrupt';
  /** Manifests and paths this chunk breaks. */
  breaks: { manifest: Sha256Hex; path: string }[];
}

export interface VerifyResult {
  chunks: number;
  manifests: number;
  bad: VerifyProblem[];
  /** Manifests that no longer parse or match their id. */
  badManifests: { manifest: Sha256Hex; problem: string }[];
}

export interface GcResult {
  kept: number;
  removed: number;
  removedBytes: number;
  removedManifests: number;
}

/** Progress of long work: `done` of `total` units (bytes), for a progress bar. */
export type ProgressFn = (done: number, total: number) => void;
