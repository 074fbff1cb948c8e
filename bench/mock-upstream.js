#!/usr/bin/env node
// A minimal, fast OpenAI-like upstream for the gateway benchmark (bench/gateway-overhead.js).
//
//   node bench/mock-upstream.js [--port N] [--host H] [--chunk-delay MS]
//   env: MOCK_PORT, MOCK_HOST, MOCK_CHUNK_DELAY_MS
//
// POST /v1/chat/completions answers a small `chat.completion` JSON, or, with "stream": true,
// an SSE stream: a role chunk, 5 content chunks, a finish chunk, a usage chunk when
// stream_options.include_usage is true, then `data: [DONE]`. Each event is written as it is
// produced (no artificial delay unless --chunk-delay is given). GET /v1/models lists one model.
// Any Authorization header is ignored. Port 0 (the default) picks a free port; once listening
// the process prints one line `MOCK_READY port=<port>` on stdout.

import http from 'node:http';
import { flag } from './flags.js';


const port = Number(flag('port', 'MOCK_PORT', '0'));
const host = flag('host', 'MOCK_HOST', '127.0.0.1');
const chunkDelayMs = Number(flag('chunk-delay', 'MOCK_CHUNK_DELAY_MS', '0'));

const CONTENT_PIECES = ['Hello', '! How', ' can I', ' help you', ' today?'];
const USAGE = { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 };
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

let seq = 0;
const created = Math.floor(Date.now() / 1000);

function completionBody(id, model) {
  return JSON.stringify({
    id,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: 'fp_mock',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: CONTENT_PIECES.join(''), refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: USAGE,
  });
}

function chunk(id, model, choices, usage) {
  const obj = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_mock', choices };
  if (usage !== undefined) obj.usage = usage;
  return `data: ${JSON.stringify(obj)}\n\n`;
}

// The events of one stream, produced lazily (one JSON.stringify per event, like a real server).
function* streamEvents(id, model, includeUsage) {
  const u = includeUsage ? null : undefined;
  yield chunk(id, model, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], u);
  for (const piece of CONTENT_PIECES) {
    yield chunk(id, model, [{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }], u);
  }
  yield chunk(id, model, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], u);
  if (includeUsage) yield chunk(id, model, [], USAGE);
  yield 'data: [DONE]\n\n';
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function handleChat(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    sendJson(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error', param: null, code: null } });
    return;
  }
  const model = typeof body.model === 'string' ? body.model : 'mock-model';
  const id = `chatcmpl-mock${(++seq).toString(36)}`;
  if (body.stream !== true) {
    const out = completionBody(id, model);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
    return;
  }
  const includeUsage = body.stream_options != null && body.stream_options.include_usage === true;
  res.writeHead(200, SSE_HEADERS);
  const events = streamEvents(id, model, includeUsage);
  if (chunkDelayMs <= 0) {
    for (const ev of events) res.write(ev);
    res.end();
    return;
  }
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const next = () => {
    if (closed) return;
    const { value, done } = events.next();
    if (done) {
      res.end();
      return;
    }
    res.write(value);
    setTimeout(next, chunkDelayMs);
  };
  next();
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (req.method === 'POST' && path === '/v1/chat/completions') {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => handleChat(req, res, parts.length === 1 ? parts[0].toString() : Buffer.concat(parts).toString()));
    return;
  }
  if (req.method === 'GET' && path === '/v1/models') {
    sendJson(res, 200, { object: 'list', data: [{ id: 'mock-model', object: 'model', created, owned_by: 'mock' }] });
    return;
  }
  req.resume();
  sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error', param: null, code: null } });
});

// Long keep-alive so load generators and proxies never race a server-side idle close.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

server.listen(port, host, () => {
  process.stdout.write(`MOCK_READY port=${server.address().port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
