import { SitecastError } from '../errors.js';

/**
 * An address's weekly schedule and rate limits, as values and as the text
 * an administrator types. The schedule is 7 days × 24 hours (Monday first,
 * the site server's local time); each hour says which priorities may start
 * sending. Rate limits are per hour of the day.
 */
export const LEVELS = ['all', 'medium', 'high', 'closed'] as const;
export type Level = (typeof LEVELS)[number];
export type Priority = 'high' | 'medium' | 'low';
export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const LEVEL_CHAR: Record<Level, string> = { all: 'a', medium: 'm', high: 'h', closed: 'c' };
const CHAR_LEVEL: Record<string, Level> = { a: 'all', m: 'medium', h: 'high', c: 'closed' };

/** 7 strings of 24 characters (a = all, m = medium and high, h = high only, c = closed), Monday first. */
export type WeekSchedule = readonly string[];
/** 24 entries, one per hour of the day: KB/s (1 KB = 1024 bytes), or null for unlimited. */
export type HourlyRate = readonly (number | null)[];

export const OPEN_WEEK: WeekSchedule = Array.from({ length: 7 }, () => 'a'.repeat(24));
export const UNLIMITED: HourlyRate = Array.from({ length: 24 }, () => null);
export const MAX_RATE_KBPS = 10_000_000;

export function isWeekSchedule(value: readonly string[]): boolean {
  return value.length === 7 && value.every((d) => /^[amhc]{24}$/.test(d));
}

const HINTS: Record<string, string> = {
  window: 'write a window as "<days> <HH-HH> <all|medium|high|closed>", e.g. "mon-fri 08-18 high"',
  rate: 'write a rate as "<n>KB/s" or "unlimited", optionally after "HH-HH "',
  pulse: 'write pulse mode as "<KB>:<seconds>", e.g. 64:5, or off',
};

function invalid(what: string, text: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_INVALID_VALUE', `${what} ${JSON.stringify(text)}: ${why}`, {
    hint: HINTS[what] ?? '',
  });
}

/** Whether a schedule level lets a request of this priority start. */
export function allows(level: Level, priority: Priority): boolean {
  switch (level) {
    case 'all':
      return true;
    case 'medium':
      return priority !== 'low';
    case 'high':
      return priority === 'high';
    case 'closed':
      return false;
  }
}

/** Monday = 0 … Sunday = 6, in local time. */
export function dayIndex(at: Date): number {
  return (at.getDay() + 6) % 7;
}

export function levelAt(schedule: WeekSchedule, at: Date): Level {
  const c = schedule[dayIndex(at)]?.[at.getHours()] ?? 'c';
  return CHAR_LEVEL[c] ?? 'closed';
}

export function isOpenFor(schedule: WeekSchedule, priority: Priority, at: Date): boolean {
  return allows(levelAt(schedule, at), priority);
}

/** KB/s for the hour `at` falls in, or null when unlimited. */
export function rateAt(rate: HourlyRate, at: Date): number | null {
  return rate[at.getHours()] ?? null;
}

function parseDays(text: string, full: string): number[] {
  if (text === 'all') return [0, 1, 2, 3, 4, 5, 6];
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [a, b, extra] = part.split('-');
    const from = DAYS.indexOf(a as (typeof DAYS)[number]);
    const to = b === undefined ? from : DAYS.indexOf(b as (typeof DAYS)[number]);
    if (from < 0 || to < 0 || extra !== undefined) throw invalid('window', full, `unknown days "${part}" (use mon … sun, a range like mon-fri, a list like sat,sun, or all)`);
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return [...out];
}

function parseHours(what: string, text: string, full: string): { from: number; to: number } {
  const m = /^(\d{2})-(\d{2})$/.exec(text);
  if (m === null) throw invalid(what, full, `hours "${text}" are not HH-HH`);
  const from = Number(m[1]);
  const to = Number(m[2]);
  if (from > 23 || to > 24 || from === to || (to === 0 && from === 0)) throw invalid(what, full, `hours "${text}" are not a range within 00-24`);
  return { from, to };
}

export interface Window {
  days: number[];
  from: number;
  to: number;
  level: Level;
}

/** Parses "<days> <HH-HH> <all|medium|high|closed>". A range that ends before it starts runs past midnight into the next day. */
export function parseWindow(text: string): Window {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 3) throw invalid('window', text, 'expected three words: days, hours, priorities');
  const [days, hours, level] = parts as [string, string, string];
  if (!(LEVELS as readonly string[]).includes(level)) throw invalid('window', text, `"${level}" is not all, medium, high or closed`);
  return { days: parseDays(days.toLowerCase(), text), ...parseHours('window', hours, text), level: level as Level };
}

/** Applies windows in order, later ones over earlier ones. */
export function applyWindows(schedule: WeekSchedule, windows: readonly Window[]): WeekSchedule {
  const cells = schedule.map((d) => d.split(''));
  for (const w of windows) {
    for (const d of w.days) {
      const end = w.to > w.from ? w.to : 24;
      for (let h = w.from; h < end; h++) (cells[d] as string[])[h] = LEVEL_CHAR[w.level];
      if (w.to < w.from) for (let h = 0; h < w.to; h++) (cells[(d + 1) % 7] as string[])[h] = LEVEL_CHAR[w.level];
    }
  }
  return cells.map((c) => c.join(''));
}

export interface RateRule {
  from: number;
  to: number;
  kbps: number | null;
}

/** Parses "<n>KB/s" or "unlimited", optionally after "HH-HH " (a range of hours of every day). */
export function parseRate(text: string): RateRule {
  const parts = text.trim().split(/\s+/);
  let hours = { from: 0, to: 24 };
  let value = parts[0] ?? '';
  if (parts.length === 2) {
    hours = parseHours('rate', parts[0] ?? '', text);
    value = parts[1] ?? '';
  } else if (parts.length !== 1) throw invalid('rate', text, 'expected "<n>KB/s", "unlimited", or "HH-HH <n>KB/s"');
  if (value.toLowerCase() === 'unlimited') return { ...hours, kbps: null };
  const m = /^(\d{1,8})KB\/s$/i.exec(value);
  if (m === null) throw invalid('rate', text, `"${value}" is not <n>KB/s or unlimited`);
  const kbps = Number(m[1]);
  if (kbps < 1 || kbps > MAX_RATE_KBPS) throw invalid('rate', text, `the rate must be between 1 and ${MAX_RATE_KBPS} KB/s`);
  return { ...hours, kbps };
}

export function applyRates(rate: HourlyRate, rules: readonly RateRule[]): HourlyRate {
  const out = [...rate];
  for (const r of rules) {
    const end = r.to > r.from ? r.to : 24;
    for (let h = r.from; h < end; h++) out[h] = r.kbps;
    if (r.to < r.from) for (let h = 0; h < r.to; h++) out[h] = r.kbps;
  }
  return out;
}

export interface Pulse {
  blockKB: number;
  delaySeconds: number;
}

/** Parses "<KB>:<seconds>": send a block of that many KB, then wait. "off" is null (rate mode). */
export function parsePulse(text: string): Pulse | null {
  if (text.trim().toLowerCase() === 'off') return null;
  const m = /^(\d{1,7}):(\d{1,4}(?:\.\d{1,3})?)$/.exec(text.trim());
  if (m === null) throw invalid('pulse', text, 'expected "<KB>:<seconds>", e.g. 64:5, or off');
  const blockKB = Number(m[1]);
  const delaySeconds = Number(m[2]);
  if (blockKB < 1 || delaySeconds > 3600) throw invalid('pulse', text, 'the block must be at least 1 KB and the delay at most 3600 s');
  return { blockKB, delaySeconds };
}
