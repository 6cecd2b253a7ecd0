import type { DpState } from '../../db/values.js';
import type { AddressRow, InboxBacklog } from './snapshot.js';
import { DP_STATES } from './snapshot.js';

/**
 * Prometheus text exposition (format 0.0.4) of a site: packages by state,
 * traffic per address, inbox backlogs, and the latency of every HTTP route.
 * Every name starts with `sitecast_`.
 */

/** Upper bounds in seconds: from a cached GET to a slow package upload. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Series {
  counts: number[];
  sum: number;
  count: number;
}

/** Request latencies by method, route template and status: bounded, since unknown URLs share one route label. */
export class LatencyHistogram {
  readonly #series = new Map<string, Series>();

  observe(labels: { method: string; route: string; status: number }, seconds: number): void {
    const key = `method="${escapeLabel(labels.method)}",route="${escapeLabel(labels.route)}",status="${labels.status}"`;
    let s = this.#series.get(key);
    if (s === undefined) {
      s = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    LATENCY_BUCKETS.forEach((le, i) => {
      if (seconds <= le) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += seconds;
    s.count += 1;
  }

  render(): string[] {
    const name = 'sitecast_http_request_duration_seconds';
    const lines = [`# HELP ${name} Time to answer an HTTP request, by method, route and status.`, `# TYPE ${name} histogram`];
    for (const [labels, s] of [...this.#series].sort(([a], [b]) => (a < b ? -1 : 1))) {
      LATENCY_BUCKETS.forEach((le, i) => lines.push(`${name}_bucket{${labels},le="${le}"} ${s.counts[i] ?? 0}`));
      lines.push(`${name}_bucket{${labels},le="+Inf"} ${s.count}`, `${name}_sum{${labels}} ${s.sum}`, `${name}_count{${labels}} ${s.count}`);
    }
    return lines;
  }
}

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: [string, number][]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([labels, v]) => `${name}${labels === '' ? '' : `{${labels}}`} ${v}`)];
}

export interface MetricsInput {
  site: string;
  states: Record<DpState, number>;
  packages: number;
  addresses: readonly AddressRow[];
  backlogs: readonly InboxBacklog[];
  subscribers: number;
  latency: LatencyHistogram;
}

export function renderMetrics(m: MetricsInput): string {
  const site = `site="${escapeLabel(m.site)}"`;
  const addr = (a: AddressRow): string => `${site},to="${escapeLabel(a.to)}"`;
  const box = (b: InboxBacklog): string => `${site},component="${escapeLabel(b.component)}",inbox="${escapeLabel(b.inbox)}"`;
  return [
    ...family('sitecast_packages', 'gauge', 'Packages defined at this site.', [[site, m.packages]]),
    ...family(
      'sitecast_package_dp_state',
      'gauge',
      'Package copies on distribution points, by state (every package, every DP known here).',
      DP_STATES.map((s) => [`${site},state="${s}"`, m.states[s]]),
    ),
    ...family('sitecast_address_bytes_sent_total', 'counter', 'Bytes sent to each target site.', m.addresses.map((a) => [addr(a), a.bytesSent])),
    ...family('sitecast_address_rate_bytes_per_second', 'gauge', 'Current transfer rate to each target site.', m.addresses.map((a) => [addr(a), a.rate])),
    ...family('sitecast_address_queued', 'gauge', 'Send requests waiting for each target site.', m.addresses.map((a) => [addr(a), a.queued])),
    ...family('sitecast_address_sending', 'gauge', 'Send requests being sent to each target site.', m.addresses.map((a) => [addr(a), a.sending])),
    ...family('sitecast_inbox_backlog', 'gauge', 'Files waiting in each inbox, by the component that reads it.', m.backlogs.map((b) => [box(b), b.files])),
    ...family('sitecast_inbox_bad', 'gauge', 'Files refused into bad/ of each inbox.', m.backlogs.map((b) => [box(b), b.bad])),
    ...family('sitecast_event_subscribers', 'gauge', 'Listeners of the live event stream.', [[site, m.subscribers]]),
    ...m.latency.render(),
    '',
  ].join('\n');
}
