#!/usr/bin/env node
// A bare Node pass-through proxy: the floor any Node gateway can reach. Used as the third
// column of bench/gateway-overhead.js.
//
//   node bench/passthrough-proxy.js --upstream http://127.0.0.1:PORT [--port N] [--host H]
//   env: PROXY_UPSTREAM, PROXY_PORT, PROXY_HOST
//
// node:http server in front, an undici Pool to the upstream behind; the request body is piped
// to the upstream and the response body piped back (pool.stream writes straight into the
// ServerResponse), with no parsing, no auth, no logging. Headers are forwarded unchanged except
// the hop-by-hop ones (Authorization passes through). Prints `PROXY_READY port=<port>` when
// listening.

import http from 'node:http';
import { flag } from './flags.js';
import { Pool } from 'undici';


const upstream = flag('upstream', 'PROXY_UPSTREAM', '');
const port = Number(flag('port', 'PROXY_PORT', '0'));
const host = flag('host', 'PROXY_HOST', '127.0.0.1');
if (!upstream) {
  console.error('passthrough-proxy: --upstream http://host:port is required');
  process.exit(2);
}

const pool = new Pool(upstream, {
  connections: 256,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 600_000,
});

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'host',
]);

function filterHeaders(headers) {
  const out = {};
  for (const name in headers) {
    if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  }
  return out;
}

function fail(res, status, message) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { message, type: 'proxy_error', param: null, code: null } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .stream(
      {
        method: req.method,
        path: req.url,
        headers: filterHeaders(req.headers),
        body: hasBody ? req : undefined,
      },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, filterHeaders(headers));
        return res;
      },
    )
    .catch((err) => fail(res, 502, `upstream error: ${err.message}`));
});

server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

server.listen(port, host, () => {
  process.stdout.write(`PROXY_READY port=${server.address().port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.closeAllConnections?.();
    server.close();
    pool.destroy().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
