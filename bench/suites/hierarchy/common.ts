import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { type Lab, expectAdmin, until } from '../../../src/site/lab.js';

export const addressRowSchema = z.object({ to: z.string(), queued: z.number(), sending: z.number(), bytesSent: z.number() });
const addressesSchema = z.object({ addresses: z.array(addressRowSchema) });

export type AddressRow = z.infer<typeof addressRowSchema>;

export async function addressAt(lab: Lab, from: string, to: string): Promise<AddressRow | undefined> {
  return addressesSchema.parse(await expectAdmin(lab.site(from), 'GET', '/api/v1/addresses', 200)).addresses.find((a) => a.to === to);
}

/**
 * bytesSent of an address once nothing is queued or sending and the sender's
 * counters (flushed every second) have settled: two equal reads 1.2 s apart.
 */
export async function settledBytesSent(lab: Lab, from: string, to: string): Promise<number> {
  let last = -1;
  return until(
    `address ${from} → ${to} idle`,
    async () => {
      const a = await addressAt(lab, from, to);
      if (a === undefined || a.queued > 0 || a.sending > 0) return undefined;
      if (a.bytesSent === last) return a.bytesSent;
      last = a.bytesSent;
      await sleep(1200);
      return undefined;
    },
    120_000,
    50,
  );
}

const statusSchema = z.object({ dps: z.array(z.object({ site: z.string(), dp: z.string(), state: z.string(), sourceVersion: z.number() })) });

/** Waits until the top site lists the DP of `code` installed at `version`: the child's status report (with its holdings) arrived. */
export async function seenAtTop(lab: Lab, packageId: string, code: string, version: number): Promise<void> {
  const top = lab.sites[0];
  if (top === undefined) return;
  await until(
    `${top.code} sees ${code} holding ${packageId} v${version}`,
    async () => {
      const s = statusSchema.parse(await expectAdmin(top, 'GET', `/api/v1/packages/${packageId}/status`, 200));
      return s.dps.some((d) => d.site === code && d.state === 'installed' && d.sourceVersion >= version) ? true : undefined;
    },
    120_000,
    50,
  );
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return ((s[Math.floor(n / 2)] ?? Number.NaN) + (s[Math.floor((n - 1) / 2)] ?? Number.NaN)) / 2;
}
