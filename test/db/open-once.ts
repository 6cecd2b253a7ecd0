// Child process of postgres.test.ts: opens (migrating) the database at argv[2], prints its schema version.
// Without an argument (the test runner loads every file under test/) it does nothing.
import { openSiteDb } from '../../src/db/index.js';

const url = process.argv[2];
if (url !== undefined) {
  const site = await openSiteDb({ kind: 'postgres', url });
  process.stdout.write(`${site.schemaVersion}\n`);
  await site.close();
}
