// Investigation only (`node bench/local-model-throughput.js --direct-batching-patch`): a module
// load hook that patches node-llama-cpp 3.x's LlamaContext in memory (node_modules untouched) for
// the direct worker, to test one hypothesis about multi-stream throughput.
//
// What it changes: LlamaContext.dispatchPendingBatch() decodes a batch, hands each sequence its
// logits, and loops at once while `_queuedDecodes` is not empty. The sequences whose next token
// is queued by then are only those whose continuation already ran; the others miss the batch and
// are decoded in the next one, alone or with fewer peers. With 2 streams, the two sequences
// alternate and never share a decode (254 decodes of 1 token for 2 x 128 tokens); with 4, one
// is always left out (batches of 3). The patch yields twice to the event loop after each decode
// before looking at the queue, so every generating sequence can queue its next token first.
//
// Used as: node --import 'data:text/javascript,import{register}from"node:module";register("<this file URL>")'.
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!url.includes('/node-llama-cpp/dist/evaluator/LlamaContext/LlamaContext.js')) return result;
  const source = String(result.source);
  const needle = 'shouldHaveAnotherLoop = this._queuedDecodes.length > 0;\n                    }';
  if (!source.includes(needle)) throw new Error('llama-batching-patch: patch point not found (node-llama-cpp version changed?)');
  return {
    ...result,
    source: source.replace(
      needle,
      'await new Promise((resolve) => setImmediate(resolve));\n' +
        '                        await new Promise((resolve) => setImmediate(resolve));\n' +
        '                        shouldHaveAnotherLoop = this._queuedDecodes.length > 0;\n                    }',
    ),
  };
}
