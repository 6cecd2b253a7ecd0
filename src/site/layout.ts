import { join } from 'node:path';

/**
 * The folders and files of a site root. Every component finds its inbox
 * here, never by building paths itself, so the layout lives in one place:
 *
 *   site.json            configuration (code, name, listen address)
 *   site.db              site database (SQLite)
 *   admin.token          the first admin token, mode 0600, for the local CLI
 *   keys/site.key        Ed25519 private key (PKCS#8 PEM, mode 0600)
 *   keys/site.pub        Ed25519 public key (SPKI PEM)
 *   inboxes/*.box        one inbox per component, as in the seed
 *   smspkg/              compressed packages <PKGID>.pkg
 *   library/             content library (chunks and manifests)
 *   logs/                <component>.log
 *   mp/pkginfo/          instruction files the management point serves
 *   state/distmgr/       Distribution Manager's record of what it has done per package
 *   state/library/       markers of a running library collection or backup (src/site/library.ts)
 *   site.url             base URL of the running server (present while it runs)
 *   site.lock            the process that runs the server (src/site/lock.ts; present while it runs)
 */
export interface SitePaths {
  root: string;
  config: string;
  database: string;
  adminToken: string;
  keys: string;
  privateKey: string;
  publicKey: string;
  inboxes: string;
  distmgr: string;
  pkginfo: string;
  replmgr: string;
  replmgrOutbound: { high: string; medium: string; low: string };
  schedule: string;
  scheduleToSend: string;
  scheduleOutboxes: string;
  despoolr: string;
  despoolrReceive: string;
  smspkg: string;
  library: string;
  logs: string;
  mp: string;
  mpPkginfo: string;
  distmgrState: string;
  libraryMarkers: string;
  siteUrl: string;
}

export function sitePaths(root: string): SitePaths {
  const inboxes = join(root, 'inboxes');
  const replmgr = join(inboxes, 'replmgr.box');
  const outbound = join(replmgr, 'outbound');
  const schedule = join(inboxes, 'schedule.box');
  const despoolr = join(inboxes, 'despoolr.box');
  const keys = join(root, 'keys');
  return {
    root,
    config: join(root, 'site.json'),
    database: join(root, 'site.db'),
    adminToken: join(root, 'admin.token'),
    keys,
    privateKey: join(keys, 'site.key'),
    publicKey: join(keys, 'site.pub'),
    inboxes,
    distmgr: join(inboxes, 'distmgr.box'),
    pkginfo: join(inboxes, 'pkginfo.box'),
    replmgr,
    replmgrOutbound: { high: join(outbound, 'high'), medium: join(outbound, 'medium'), low: join(outbound, 'low') },
    schedule,
    scheduleToSend: join(schedule, 'tosend'),
    scheduleOutboxes: join(schedule, 'outboxes'),
    despoolr,
    despoolrReceive: join(despoolr, 'receive'),
    smspkg: join(root, 'smspkg'),
    library: join(root, 'library'),
    logs: join(root, 'logs'),
    mp: join(root, 'mp'),
    mpPkginfo: join(root, 'mp', 'pkginfo'),
    distmgrState: join(root, 'state', 'distmgr'),
    libraryMarkers: join(root, 'state', 'library'),
    siteUrl: join(root, 'site.url'),
  };
}

/** Folders init creates (parents before children). */
export function siteFolders(p: SitePaths): string[] {
  return [
    p.inboxes,
    p.distmgr,
    p.pkginfo,
    p.replmgr,
    p.replmgrOutbound.high,
    p.replmgrOutbound.medium,
    p.replmgrOutbound.low,
    p.schedule,
    p.scheduleToSend,
    p.scheduleOutboxes,
    p.despoolr,
    p.despoolrReceive,
    p.smspkg,
    p.library,
    p.logs,
  ];
}
