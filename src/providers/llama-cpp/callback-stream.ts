/**
 * Bridges a callback-based producer (a generation calling `emit` per piece) to an async
 * iterable that yields the pieces as they arrive. If the consumer stops early, the producer
 * is aborted and awaited before the iterator finishes, so the caller can safely reuse its
 * sequences afterwards. The producer's error, if any, is thrown after the pieces emitted
 * before it.
 */
export async function* callbackStream<T, R>(
  signal: AbortSignal,
  run: (emit: (item: T) => void, signal: AbortSignal) => Promise<R>,
): AsyncGenerator<T, R> {
  const controller = new AbortController();
  const combined = AbortSignal.any([signal, controller.signal]);
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const producing = run((item) => {
    items.push(item);
    notify();
  }, combined).finally(() => {
    settled = true;
    notify();
  });
  producing.catch(() => {});
  try {
    for (;;) {
      while (items.length > 0) yield items.shift()!;
      if (settled) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    return await producing;
  } finally {
    if (!settled) {
      controller.abort(new Error('stream closed by the consumer'));
      await producing.catch(() => {});
    }
  }
}

/**
 * Runs tasks concurrently; when one fails, the others are aborted, and the first failure is
 * thrown once all have stopped (so no task still holds a sequence when the caller goes on).
 */
export async function allOrAbort<R>(signal: AbortSignal, tasks: Array<(signal: AbortSignal) => Promise<R>>): Promise<R[]> {
  const controller = new AbortController();
  const combined = AbortSignal.any([signal, controller.signal]);
  let failure: { error: unknown } | undefined;
  const results = await Promise.allSettled(
    tasks.map((task) =>
      task(combined).catch((error: unknown) => {
        if (!failure) {
          failure = { error };
          controller.abort(error);
        }
        throw error;
      }),
    ),
  );
  if (failure) throw failure.error;
  return results.map((result) => (result as PromiseFulfilledResult<R>).value);
}
