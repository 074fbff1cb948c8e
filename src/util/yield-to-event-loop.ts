/** Lets pending I/O and timers run before continuing (a macrotask turn, not a microtask). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
