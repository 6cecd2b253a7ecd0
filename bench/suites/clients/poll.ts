import { Agent, request } from 'node:http';
import { HEADER_CLIENT, HEADER_SIGNATURE, HEADER_TIME, requestSigningText, signText } from '../../../src/formats/client-protocol.js';
import type { SimClient } from './setup.js';

export interface PollResult {
  sent: number;
  ok: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  /** Seconds into the run at which the slowest request was due (a stall shows as one slow patch). */
  maxAt: number;
  /** Requests per second actually started. */
  rate: number;
  /** Bytes of the last policy, for the note. */
  policyBytes: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/**
 * An open-loop load: a signed `GET /mp/v1/policy` from the next client every
 * 1/rate seconds, whether or not earlier requests have finished (so a slow
 * server cannot slow the load down and hide its own latency). Latency is
 * from the moment a request was due to its last byte.
 */
export async function pollAtRate(mp: string, clients: readonly SimClient[], rate: number, seconds: number): Promise<PollResult> {
  const url = new URL(`${mp}/mp/v1/policy`);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  let maxAt = 0;
  let max = 0;
  let ok = 0;
  let failed = 0;
  let policyBytes = 0;
  const pending = new Set<Promise<void>>();
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const one = (i: number, due: number): Promise<void> => {
    const c = clients[i % clients.length] as SimClient;
    const time = new Date().toISOString();
    const sig = signText(c.keys.privateKey, requestSigningText('GET', '/mp/v1/policy', c.id, time, ''));
    return new Promise<void>((resolve) => {
      const req = request(url, { agent, headers: { [HEADER_CLIENT]: c.id, [HEADER_TIME]: time, [HEADER_SIGNATURE]: sig } }, (res) => {
        let n = 0;
        res.on('data', (b: Buffer) => (n += b.length));
        res.on('end', () => {
          const latency = performance.now() - due;
          latencies.push(latency);
          if (latency > max) [max, maxAt] = [latency, (due - start) / 1000];
          if (res.statusCode === 200) {
            ok++;
            policyBytes = n;
          } else failed++;
          resolve();
        });
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end();
    });
  };
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const p = one(i, due);
    pending.add(p);
    void p.then(() => pending.delete(p));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = [...latencies].sort((a, b) => a - b);
  return { sent: total, ok, failed, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, maxAt, rate: total / elapsed, policyBytes };
}
