import { describe, expect, it } from 'vitest';
import { budgetWindow, dayWindow, minuteWindow, monthWindow, weekWindow } from './windows.js';

describe('windows', () => {
  it('aligns to the UTC minute and day', () => {
    const t = Date.UTC(2030, 0, 7, 12, 34, 56, 789);
    expect(minuteWindow(t)).toEqual({ start: Date.UTC(2030, 0, 7, 12, 34), end: Date.UTC(2030, 0, 7, 12, 35) });
    expect(dayWindow(t)).toEqual({ start: Date.UTC(2030, 0, 7), end: Date.UTC(2030, 0, 8) });
  });

  it('starts ISO weeks on Monday', () => {
    // 2030-01-07 is a Monday; 2030-01-13 a Sunday
    expect(weekWindow(Date.UTC(2030, 0, 7))).toEqual({ start: Date.UTC(2030, 0, 7), end: Date.UTC(2030, 0, 14) });
    expect(weekWindow(Date.UTC(2030, 0, 13, 23, 59)).start).toBe(Date.UTC(2030, 0, 7));
    expect(weekWindow(Date.UTC(2030, 0, 14)).start).toBe(Date.UTC(2030, 0, 14));
    // across a year boundary: Wednesday 2025-01-01 belongs to the week from Monday 2024-12-30
    expect(weekWindow(Date.UTC(2025, 0, 1, 8)).start).toBe(Date.UTC(2024, 11, 30));
  });

  it('uses calendar months (leap years included) and a total that never ends', () => {
    expect(monthWindow(Date.UTC(2028, 1, 29, 23))).toEqual({ start: Date.UTC(2028, 1, 1), end: Date.UTC(2028, 2, 1) });
    expect(monthWindow(Date.UTC(2030, 11, 31))).toEqual({ start: Date.UTC(2030, 11, 1), end: Date.UTC(2031, 0, 1) });
    expect(budgetWindow('total', Date.now())).toEqual({ start: 0, end: null });
    expect(budgetWindow('day', Date.UTC(2030, 0, 7, 5))).toEqual(dayWindow(Date.UTC(2030, 0, 7, 5)));
  });
});
