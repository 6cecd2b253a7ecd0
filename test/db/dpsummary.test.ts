import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { summarizePackageStates } from '../../src/db/dpsummary.js';
import { addDp, createPackage, setDpStatus } from '../../src/db/index.js';
import { eachBackend, fixture } from './backends.js';

eachBackend('package summary: state counts per package, packages without a status left out', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const a = await createPackage(site, { name: 'a', sourcePath: '/srv/a' });
  const b = await createPackage(site, { name: 'b', sourcePath: '/srv/b' });
  await createPackage(site, { name: 'never distributed', sourcePath: '/srv/c' });
  for (const dp of ['dp1', 'dp2', 'dp3']) await addDp(site, { site: 'CEN', name: dp, path: `/srv/dps/${dp}` });
  await setDpStatus(site, { packageId: a.id, site: 'CEN', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  await setDpStatus(site, { packageId: a.id, site: 'CEN', dp: 'dp2', state: 'installed', sourceVersion: 1 });
  await setDpStatus(site, { packageId: a.id, site: 'CEN', dp: 'dp3', state: 'retrying', retryCount: 2 });
  await setDpStatus(site, { packageId: b.id, site: 'CEN', dp: 'dp1', state: 'failed', lastMessage: 'disk full' });
  await setDpStatus(site, { packageId: b.id, site: 'PRI', dp: 'dp9', state: 'pending' });

  assert.deepEqual(await summarizePackageStates(site), [
    { packageId: a.id, pending: 0, installed: 2, retrying: 1, failed: 0 },
    { packageId: b.id, pending: 1, installed: 0, retrying: 0, failed: 1 },
  ]);
});

eachBackend('package summary: an empty site has an empty summary', async (t, backend) => {
  const { site } = await fixture(t, backend);
  assert.deepEqual(await summarizePackageStates(site), []);
});

eachBackend('migration 6 indexes package_dp_status by (package_id, state), which covers the summary query', async (t, backend) => {
  const { site } = await fixture(t, backend);
  if (backend.name === 'sqlite') {
    const columns = await sql<{ name: string }>`SELECT name FROM pragma_index_info('package_dp_status_state') ORDER BY seqno`.execute(site.db);
    assert.deepEqual(columns.rows.map((r) => r.name), ['package_id', 'state']);
    const plan = await sql<{ detail: string }>`EXPLAIN QUERY PLAN SELECT package_id, state, count(*) FROM package_dp_status GROUP BY package_id, state ORDER BY package_id`.execute(site.db);
    assert.ok(
      plan.rows.some((r) => r.detail.includes('COVERING INDEX package_dp_status_state')),
      `the summary reads the index alone: ${plan.rows.map((r) => r.detail).join('; ')}`,
    );
  } else {
    const index = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE tablename = 'package_dp_status' AND indexname = 'package_dp_status_state'`.execute(site.db);
    assert.match(index.rows[0]?.indexdef ?? '', /\(package_id, state\)/);
  }
});
