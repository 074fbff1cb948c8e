/**
 * Download progress on stderr: a bar redrawn in place on a terminal (percent, bytes, speed,
 * ETA), else one line about every 10 %. Silent when quiet.
 */
import { formatBytes, formatDuration } from './format.js';

export interface ProgressStream {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(text: string): unknown;
}

export interface Progress {
  start(total: number | null, resumedFrom: number): void;
  update(bytes: number): void;
  /** Ends the bar's line (call before printing anything else). */
  done(): void;
}

export function createProgress(options: { stream: ProgressStream; quiet?: boolean; now?: () => number }): Progress {
  const { stream } = options;
  const now = options.now ?? (() => performance.now());
  if (options.quiet) return { start: () => undefined, update: () => undefined, done: () => undefined };
  let total: number | null = null;
  let startBytes = 0;
  let startTime = 0;
  let lastDraw = 0;
  let lastStep = -1;
  let lastBytes = 0;
  let drawn = false;

  const describe = (bytes: number): string => {
    const elapsed = (now() - startTime) / 1000;
    const speed = elapsed > 0.2 ? (bytes - startBytes) / elapsed : 0;
    const rate = speed > 0 ? `${formatBytes(speed)}/s` : '-- B/s';
    if (total === null || total <= 0) return `${formatBytes(bytes)}  ${rate}`;
    const percent = Math.min(100, (bytes / total) * 100);
    const eta = speed > 0 ? formatDuration((total - bytes) / speed) : '--:--';
    return `${percent.toFixed(0).padStart(3)}%  ${formatBytes(bytes)} / ${formatBytes(total)}  ${rate}  ETA ${eta}`;
  };

  const draw = (bytes: number): void => {
    const text = describe(bytes);
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - text.length - 4));
    let bar = '';
    if (total !== null && total > 0) {
      const filled = Math.round((Math.min(bytes, total) / total) * width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] `;
    }
    stream.write(`\r\x1b[K${bar}${text}`);
    drawn = true;
  };

  return {
    start(size, resumedFrom) {
      total = size;
      startBytes = resumedFrom;
      lastBytes = resumedFrom;
      startTime = now();
      if (stream.isTTY) draw(resumedFrom);
      else {
        lastStep = total && total > 0 ? Math.floor((resumedFrom / total) * 10) : Math.floor(resumedFrom / 100e6);
        if (resumedFrom > 0) {
          const share = total && total > 0 ? ` of ${formatBytes(total)} (${Math.floor((resumedFrom / total) * 100)}%)` : '';
          stream.write(`Resuming at ${formatBytes(resumedFrom)}${share}\n`);
        }
      }
    },
    update(bytes) {
      lastBytes = bytes;
      if (stream.isTTY) {
        const time = now();
        if (time - lastDraw >= 100 || (total !== null && bytes >= total)) {
          lastDraw = time;
          draw(bytes);
        }
        return;
      }
      // One line per 10 % (or per 100 MB when the size is unknown).
      const step = total && total > 0 ? Math.floor((bytes / total) * 10) : Math.floor(bytes / 100e6);
      if (step > lastStep) {
        lastStep = step;
        stream.write(`${describe(bytes)}\n`);
      }
    },
    done() {
      if (stream.isTTY && drawn) {
        draw(lastBytes);
        stream.write('\n');
        drawn = false;
      }
    },
  };
}
