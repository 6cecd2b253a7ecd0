import type { Migration } from '../migration.js';
import { initial } from './001_initial.js';
import { addresses } from './002_addresses.js';
import { hierarchy } from './003_hierarchy.js';
import { clients } from './004_clients.js';
import { refresh } from './005_refresh.js';
import { statusSummary } from './006_status_summary.js';
import { statusChanges } from './007_status_changes.js';
import { wantedVersions } from './008_wanted_versions.js';
import { sourceProblem } from './009_source_problem.js';
import { statusMessageTime } from './010_status_message_time.js';
import { receivedDefinitions } from './011_received_definitions.js';
import { packageIcon } from './012_package_icon.js';

/** Every migration this build knows, oldest first. Append only; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [initial, addresses, hierarchy, clients, refresh, statusSummary, statusChanges, wantedVersions, sourceProblem, statusMessageTime, receivedDefinitions, packageIcon];
