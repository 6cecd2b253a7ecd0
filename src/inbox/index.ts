export { dropFile, dropFiles, type DropOptions } from './drop.js';
export { Inbox, type InboxHandler, type InboxOptions, type InboxStats } from './inbox.js';
export { type InboxEntry, oldestFirst } from './scan.js';
export { assertSafeInboxName, badFileNames, isSafeInboxName, unsafeNameReason, BAD_FOLDER, REASON_SUFFIX } from './name.js';
export { DEFAULT_BAD_CODES, isBadInput } from './bad.js';
