#!/usr/bin/env node
// The "direct" side of bench/local-model-throughput.js: node-llama-cpp called in-process, set up
// as Chatgate's llama-cpp provider sets it up (src/providers/llama-cpp/loaded-models.ts and
// generate.ts): getLlama (CPU only when gpu_layers is 0, prebuilt binaries, log level warn), one
// model, one context with `sequences: parallel` and the same context size and thread count, the
// chat wrapper resolved from the model file, and per request a fresh LlamaChat on a free
// sequence, generateResponse with OpenAI's default sampling as Chatgate maps it (temperature 1,
// no repeat penalty, the request's seed), streamed through onTextChunk, completion tokens from
// the sequence's token meter, then clearHistory() before the sequence is reused.
//
// With --direct-batching-patch the driver starts this worker with bench/llama-batching-patch.js
// loaded (investigation only: then it is not Chatgate's setup any more).
//
// Started by the driver with an IPC channel (child_process.fork). Messages:
//   driver -> worker: { type: 'load', modelPath, contextSize, parallel, threads, gpuLayers }
//                     { type: 'run', id, concurrency, requestsPerStream, maxTokens, prompts, seed, temperature }
//   worker -> driver: { type: 'loaded', ms, info } | { type: 'result', id, ... } | { type: 'error', id, message }

import { performance } from 'node:perf_hooks';

if (!process.send) {
  console.error('llama-direct-worker: start me with child_process.fork (bench/local-model-throughput.js does)');
  process.exit(2);
}

let state = null;
let batchSizes = {};

async function load(msg) {
  const t0 = performance.now();
  const lib = await import('node-llama-cpp');
  const llama = await lib.getLlama({
    gpu: msg.gpuLayers === 0 ? false : 'auto',
    build: 'never',
    skipDownload: true,
    logLevel: lib.LlamaLogLevel.warn,
  });
  const model = await llama.loadModel({ modelPath: msg.modelPath, gpuLayers: msg.gpuLayers });
  const context = await model.createContext({
    contextSize: msg.contextSize,
    sequences: msg.parallel,
    threads: msg.threads,
  });
  const sequences = Array.from({ length: msg.parallel }, () => context.getSequence());
  // Diagnostics: the size of every decode batch (tokens), through node-llama-cpp's internal
  // native context object (3.x); skipped if that changes.
  const native = context._ctx;
  if (native && typeof native.initBatch === 'function') {
    const initBatch = native.initBatch.bind(native);
    const countingInitBatch = (size) => {
      batchSizes[size] = (batchSizes[size] ?? 0) + 1;
      return initBatch(size);
    };
    const bound = new Map(); // one bound function per method: no allocation per call
    context._ctx = new Proxy(native, {
      get(target, prop) {
        if (prop === 'initBatch') return countingInitBatch;
        const value = target[prop];
        if (typeof value !== 'function') return value;
        let fn = bound.get(prop);
        if (!fn) bound.set(prop, (fn = value.bind(target)));
        return fn;
      },
    });
  }
  const chatWrapper = lib.resolveChatWrapper(model);
  state = { lib, llama, model, context, sequences, free: [...sequences], chatWrapper };
  return {
    ms: performance.now() - t0,
    info: {
      chatWrapper: chatWrapper.wrapperName ?? chatWrapper.constructor.name,
      contextSize: context.contextSize,
      batchSize: context.batchSize,
      threads: context.currentThreads ?? msg.threads,
      gpu: llama.gpu,
      trainContextSize: model.trainContextSize,
      batchingPatch: process.env.CHATGATE_BENCH_BATCHING_PATCH === '1',
    },
  };
}

// One chat request, as generateChat() in src/providers/llama-cpp/generate.ts runs it.
async function oneRequest(prompt, maxTokens, sampling) {
  const sequence = state.free.pop();
  if (!sequence) throw new Error('no free sequence (concurrency above parallel)');
  const t0 = performance.now();
  let firstAt = null;
  let lastAt = null;
  let chunks = 0;
  const chat = new state.lib.LlamaChat({ contextSequence: sequence, chatWrapper: state.chatWrapper, autoDisposeSequence: false });
  try {
    const history = [{ type: 'user', text: prompt }];
    // Chatgate tokenizes the prompt once to size the completion (completionBudget): do the same.
    const { contextText } = chat.chatWrapper.generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] });
    const promptTokens = contextText.tokenize(state.model.tokenizer).length;
    if (promptTokens + maxTokens > state.context.contextSize) throw new Error(`prompt ${promptTokens} + ${maxTokens} tokens over the context`);
    const meter = sequence.tokenMeter;
    const in0 = meter.usedInputTokens;
    const out0 = meter.usedOutputTokens;
    const result = await chat.generateResponse(history, {
      ...sampling,
      maxTokens,
      onTextChunk: (text) => {
        if (text.length === 0) return;
        const now = performance.now();
        if (firstAt === null) firstAt = now;
        lastAt = now;
        chunks++;
      },
    });
    const endAt = performance.now();
    return {
      startAt: t0,
      firstAt,
      lastAt,
      endAt,
      ttftMs: firstAt === null ? null : firstAt - t0,
      totalMs: endAt - t0,
      completionTokens: meter.usedOutputTokens - out0,
      promptTokens: meter.usedInputTokens - in0,
      chunks,
      finishReason: result.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
    };
  } finally {
    chat.dispose({ disposeSequence: false });
    await sequence.clearHistory();
    state.free.push(sequence);
  }
}

async function run(msg) {
  batchSizes = {};
  const t0 = performance.now();
  const streams = Array.from({ length: msg.concurrency }, async (_, s) => {
    const out = [];
    for (let r = 0; r < msg.requestsPerStream; r++) {
      const prompt = msg.prompts[(s + r * msg.concurrency) % msg.prompts.length];
      const sampling = { temperature: msg.temperature, repeatPenalty: false, seed: msg.seed + s * 1000 + r };
      out.push(await oneRequest(prompt, msg.maxTokens, sampling));
    }
    return out;
  });
  const requests = (await Promise.all(streams)).flat();
  const t1 = performance.now();
  // Times relative to the start of the cell, like the HTTP client reports them.
  for (const q of requests) for (const k of ['startAt', 'firstAt', 'lastAt', 'endAt']) if (q[k] !== null) q[k] -= t0;
  return { wallMs: t1 - t0, requests, batchSizes };
}

process.on('message', (msg) => {
  const reply = (body) => process.send({ id: msg.id, ...body });
  const task = msg.type === 'load' ? load(msg).then((r) => reply({ type: 'loaded', ...r })) : msg.type === 'run' ? run(msg).then((r) => reply({ type: 'result', ...r })) : Promise.reject(new Error(`unknown message ${msg.type}`));
  task.catch((error) => reply({ type: 'error', message: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) }));
});
process.on('disconnect', () => process.exit(0));
