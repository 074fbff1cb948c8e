/**
 * Bridges a callback-based generation (onTextChunk) to an async iterable of text chunks,
 * yielded as they arrive. If the consumer stops early, the generation is aborted and awaited
 * before the iterator finishes, so the caller can safely reuse its sequence afterwards.
 */
export async function* textChunks<R>(
  signal: AbortSignal,
  run: (onText: (text: string) => void, signal: AbortSignal) => Promise<R>,
): AsyncGenerator<string, R> {
  const controller = new AbortController();
  const combined = AbortSignal.any([signal, controller.signal]);
  const chunks: string[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const generation = run((text) => {
    if (text.length === 0) return;
    chunks.push(text);
    notify();
  }, combined).finally(() => {
    settled = true;
    notify();
  });
  generation.catch(() => {});
  try {
    for (;;) {
      while (chunks.length > 0) yield chunks.shift()!;
      if (settled) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    return await generation;
  } finally {
    if (!settled) {
      controller.abort(new Error('stream closed by the consumer'));
      await generation.catch(() => {});
    }
  }
}
