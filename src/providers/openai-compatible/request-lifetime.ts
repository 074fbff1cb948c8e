/**
 * One upstream request's lifetime: a single AbortSignal handed to undici that fires when the
 * client disconnects (the call's signal), when the whole-request timeout elapses, when the
 * consumer stops iterating, or when the provider gives up on a broken stream. Aborting it
 * makes undici destroy the request and its socket at once.
 */

/** Why the upstream request was aborted. */
export type AbortCause = 'client' | 'timeout' | 'consumer' | 'failure';

/** setTimeout fires at once for delays above 2^31 - 1 ms. */
const longestTimerDelay = 2_147_483_647;

export class UpstreamRequestLifetime {
  readonly timeoutMs: number;
  /** Set once, by the first abort. */
  cause: AbortCause | undefined;
  private readonly controller = new AbortController();
  private readonly callSignal: AbortSignal;
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(callSignal: AbortSignal, timeoutMs: number) {
    this.callSignal = callSignal;
    this.timeoutMs = timeoutMs;
  }

  /** Starts the clock and the watch on the call's signal, as the request is sent. */
  start(): void {
    if (this.cause !== undefined || this.released || this.timer !== undefined) return;
    const callSignal = this.callSignal;
    if (callSignal.aborted) {
      this.abort('client');
      return;
    }
    callSignal.addEventListener('abort', this, { once: true });
    this.timer = setTimeout(abortOnTimeout, Math.min(this.timeoutMs, longestTimerDelay), this);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Aborts the upstream request (no-op once aborted, or released since the request is over). */
  abort(cause: AbortCause): void {
    if (this.cause !== undefined || this.released) return;
    this.cause = cause;
    this.release();
    this.controller.abort(new Error(`Upstream request aborted (${cause})`));
  }

  /** The request is over: stop the timer and stop listening to the call's signal. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.callSignal.removeEventListener('abort', this);
  }

  /** EventListener object form (no closure per request): the call's signal fired. */
  handleEvent(): void {
    this.abort('client');
  }
}

function abortOnTimeout(lifetime: UpstreamRequestLifetime): void {
  lifetime.abort('timeout');
}
