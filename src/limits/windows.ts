/**
 * The fixed windows counters live in, all in UTC: the minute and the day for rate limits,
 * and the budget periods (day, ISO week starting Monday, calendar month, or `total`,
 * which never ends). A window is `[start, end)` in milliseconds since the Unix epoch.
 */

export type BudgetPeriod = 'day' | 'week' | 'month' | 'total';

export interface TimeWindow {
  start: number;
  /** Exclusive; `null` for the `total` budget period, which never resets. */
  end: number | null;
}

export interface BoundedWindow {
  start: number;
  end: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export function minuteWindow(now: number): BoundedWindow {
  const start = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  return { start, end: start + MINUTE_MS };
}

export function dayWindow(now: number): BoundedWindow {
  const start = Math.floor(now / DAY_MS) * DAY_MS;
  return { start, end: start + DAY_MS };
}

/** The ISO week (Monday 00:00 UTC to the next Monday). */
export function weekWindow(now: number): BoundedWindow {
  const day = dayWindow(now).start;
  // getUTCDay: 0 = Sunday … 6 = Saturday; days since Monday:
  const sinceMonday = (new Date(day).getUTCDay() + 6) % 7;
  const start = day - sinceMonday * DAY_MS;
  return { start, end: start + 7 * DAY_MS };
}

export function monthWindow(now: number): BoundedWindow {
  const date = new Date(now);
  const start = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  const end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
  return { start, end };
}

/** The budget period containing `now`; `total` is `{start: 0, end: null}`. */
export function budgetWindow(period: BudgetPeriod, now: number): TimeWindow {
  switch (period) {
    case 'day':
      return dayWindow(now);
    case 'week':
      return weekWindow(now);
    case 'month':
      return monthWindow(now);
    case 'total':
      return { start: 0, end: null };
  }
}
