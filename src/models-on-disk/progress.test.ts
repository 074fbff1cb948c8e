import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatDuration } from './format.js';
import { createProgress } from './progress.js';

function recorder(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, columns: 100, write: (text: string) => writes.push(text) }, writes };
}

describe('progress', () => {
  it('prints a line about every 10 % when not a terminal', () => {
    const { stream, writes } = recorder(false);
    let time = 0;
    const progress = createProgress({ stream, now: () => time });
    progress.start(1000, 0);
    for (let bytes = 50; bytes <= 1000; bytes += 50) {
      time += 100;
      progress.update(bytes);
    }
    progress.done();
    expect(writes).toHaveLength(10);
    expect(writes[9]).toMatch(/^100%\s+1.00 KB \/ 1.00 KB\s+500 B\/s\s+ETA 0:00\n$/);
  });

  it('redraws a bar in place on a terminal and ends the line', () => {
    const { stream, writes } = recorder(true);
    let time = 0;
    const progress = createProgress({ stream, now: () => time });
    progress.start(2_000_000, 1_000_000);
    time = 1000;
    progress.update(1_500_000);
    progress.done();
    expect(writes.some((text) => text.startsWith('\r\x1b[K[') && text.includes(' 75%') && text.includes('500 KB/s') && text.includes('ETA 0:01'))).toBe(true);
    expect(writes.at(-1)).toBe('\n');
  });

  it('is silent when quiet', () => {
    const { stream, writes } = recorder(true);
    const progress = createProgress({ stream, quiet: true });
    progress.start(10, 0);
    progress.update(10);
    progress.done();
    expect(writes).toEqual([]);
  });
});

describe('format', () => {
  it('formats sizes, durations and counts', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(4_920_000_000)).toBe('4.92 GB');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('--:--');
    expect(formatCount(8_030_261_248)).toBe('8.0B');
    expect(formatCount(1_234)).toBe('1.2K');
  });
});
