export { openSiteDb, type SiteDb, type DbLocation, type OpenOptions } from './open.js';
export type { DbDialect, ChangeTriggerSpec, ChangeSubscription, DbFailure } from './dialect.js';
export { redactDsn, CHANGE_CHANNEL } from './postgres.js';
export type { Migration } from './migration.js';
export { MIGRATIONS } from './migrations/index.js';
export { listAppliedMigrations, schemaVersion } from './migrate.js';
export {
  getAddress,
  listAddresses,
  setAddress,
  recordAddressTraffic,
  ADDRESS_DEFAULTS,
  type Address,
  type AddressChange,
  type AddressSender,
} from './addresses.js';
export { addSite, getSite, getLocalSite, listSites, type Site, type NewSite } from './sites.js';
export {
  createPackage,
  updatePackage,
  getPackage,
  listPackages,
  setPackageManifest,
  setSourceProblem,
  DEFAULT_MAX_RUN_TIME_SECONDS,
  type Package,
  type Program,
  type NewPackage,
  type PackageUpdate,
} from './packages.js';
export { addDp, checkRemoteDpRemovable, dpHolders, listDps, removeDp, setTargets, type DpHolders, getTargets, type Dp, type NewDp, type Target } from './dps.js';
export { setDpStatus, deleteDpStatus,
  getPackageStatus, requestRefresh, listRefreshRequests, clearRefreshRequest, type DpStatus, type DpStatusUpdate } from './dpstatus.js';
export {
  addStatusMessage,
  deleteStatusMessagesBefore,
  listStatusMessages,
  type StatusMessage,
  type NewStatusMessage,
  type StatusMessageFilter,
} from './messages.js';
export { readChanges, ackChanges, ackChangeIds, type Change } from './changes.js';
export {
  createAdminToken,
  verifyAdminToken,
  listAdminTokens,
  revokeAdminToken,
  type AdminToken,
  type IssuedToken,
  type NewAdminToken,
} from './tokens.js';
export * from './values.js';
