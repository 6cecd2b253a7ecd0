export { initSite, type InitOptions, type InitResult } from './init.js';
export {
  loadSiteConfig,
  parseListen,
  siteConfigSchema,
  siteCodeSchema,
  DEFAULT_HOST,
  DEFAULT_PORT,
  type SiteConfig,
  type Listen,
} from './config.js';
export { sitePaths, siteFolders, type SitePaths } from './layout.js';
export { createSiteKeys, loadSiteKeys, type SiteKeyPair } from './keys.js';
export { createLogger, redact, type ComponentLog, type LogLevel, type LogOptions } from './log.js';
