/**
 * The application logger: pino writing JSON lines to stdout asynchronously. Lines are
 * gathered into writes of up to 4 KiB and flushed at least every 250 ms, so that a busy
 * server makes one write per many requests instead of one system call (and one wake-up of
 * the I/O thread) per line. `close()` flushes what is left, synchronously.
 */
import { pino, type Logger } from 'pino';

export interface AppLogger {
  logger: Logger;
  close(): void;
}

export function createLogger(level: string, destination = 1): AppLogger {
  const stream = pino.destination({ dest: destination, sync: false, minLength: 4096 });
  const logger = pino({ level, base: undefined }, stream);
  const timer = setInterval(() => stream.flush(), 250);
  timer.unref();
  return {
    logger,
    close() {
      clearInterval(timer);
      try {
        stream.flushSync();
      } catch {
        // Nothing more can be done for a destination that is gone.
      }
    },
  };
}
