/**
 * OpenAI's Files API (docs/files.md): upload (multipart, streamed to the blob store, never
 * held whole in memory), list, retrieve, download and delete. A key sees only its own
 * project's files; the master key sees the `default` project.
 */
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { GatewayError, invalidRequest, missingParameter, notFound } from '../errors/gateway-error.js';
import { BlobTooLargeError, type BlobStore } from '../files/blob-store.js';
import { MultipartError, multipartBoundary, multipartEvents, type MultipartEvent } from '../files/multipart.js';
import type { FileRecord, FileStore } from '../storage/spec.js';
import { randomAlphanumeric } from './ids.js';
import { isUnstorableText } from './parse-request.js';

export const FILE_PURPOSES = ['batch', 'fine-tune', 'vision', 'user_data', 'assistants', 'evals'] as const;
/** Purposes of the files Chatgate writes itself (batch results, fine-tuning results): listable, not uploadable. */
export const OUTPUT_FILE_PURPOSES = ['batch_output', 'fine-tune-results'] as const;

export interface FilesDependencies {
  files: FileStore;
  blobs: BlobStore;
  /** Largest accepted file (`files.max_bytes`): 413 beyond. */
  maxBytes: number;
}

/** Text fields (`purpose`) are small; a larger one is refused rather than buffered. */
const MAX_FIELD_BYTES = 64 * 1024;
/** Room for the multipart framing and text fields around the file, for the early check on Content-Length. */
const MULTIPART_OVERHEAD = 1024 * 1024;
const MAX_LIST_LIMIT = 10_000;
/**
 * An upload refused as too large is still read (and thrown away) up to this many more bytes
 * and this long before the 413 goes out: answering while the client is still sending and then
 * closing would reset the connection under the client, which then sees a network error
 * instead of the 413. Beyond either bound the connection is closed anyway.
 */
const DISCARD_MAX_BYTES = 256 * 1024 * 1024;
const DISCARD_MAX_MS = 10_000;

/** Reads and drops what is left of a request body, within the bounds above. */
async function discardRest(chunks: AsyncIterable<unknown>): Promise<void> {
  const deadline = Date.now() + DISCARD_MAX_MS;
  let dropped = 0;
  try {
    for await (const chunk of chunks) {
      dropped += (chunk as { byteLength?: number }).byteLength ?? 0;
      if (dropped > DISCARD_MAX_BYTES || Date.now() > deadline) return;
    }
  } catch {
    // The client went away: nothing left to drain.
  }
}

async function* eventBytes(events: AsyncGenerator<MultipartEvent, void, undefined>): AsyncGenerator<Uint8Array> {
  for await (const event of events) if (event.type === 'data') yield event.bytes;
}

export function fileTooLarge(maxBytes: number): GatewayError {
  return new GatewayError({
    status: 413,
    type: 'invalid_request_error',
    code: 'file_too_large',
    param: 'file',
    message: `The file is larger than the limit of ${maxBytes} bytes (files.max_bytes).`,
    // The rest of the upload is not read: the connection cannot be reused.
    headers: { connection: 'close' },
  });
}

function noSuchFile(id: string): GatewayError {
  return notFound(`No such File object: ${id}`, 'id');
}

export function newFileId(): string {
  return `file-${randomAlphanumeric(24)}`;
}

/** A file in OpenAI's shape. */
export function fileObject(record: FileRecord) {
  return {
    id: record.id,
    object: 'file' as const,
    bytes: record.bytes,
    created_at: Math.floor(record.createdAt / 1000),
    filename: record.filename,
    purpose: record.purpose,
    status: 'processed' as const,
    expires_at: null,
    status_details: null,
  };
}

function checkPurpose(purpose: string): void {
  if (!(FILE_PURPOSES as readonly string[]).includes(purpose)) {
    throw invalidRequest(`Invalid value for 'purpose': expected one of ${FILE_PURPOSES.map((value) => `'${value}'`).join(', ')}.`, 'purpose', 'invalid_value');
  }
}

/** Reads the next event; the multipart stream's own failures become 400s. */
async function next(events: AsyncGenerator<MultipartEvent, void, undefined>): Promise<IteratorResult<MultipartEvent, void>> {
  try {
    return await events.next();
  } catch (error) {
    if (error instanceof MultipartError) throw invalidRequest(error.message);
    throw error;
  }
}

async function upload(context: Context<AppEnv>, dependencies: FilesDependencies): Promise<Response> {
  const boundary = multipartBoundary(context.req.header('content-type'));
  if (boundary === null) {
    throw invalidRequest("The request must be multipart/form-data with a 'file' and a 'purpose' field.", null, 'invalid_content_type');
  }
  const declared = context.req.header('content-length');
  const body = context.req.raw.body;
  if (declared !== undefined && Number(declared) > dependencies.maxBytes + MULTIPART_OVERHEAD) {
    if (body) await discardRest(body as unknown as AsyncIterable<Uint8Array>);
    throw fileTooLarge(dependencies.maxBytes);
  }
  if (!body) throw missingParameter('file');

  const project = context.get('principal').project;
  const id = newFileId();
  const events = multipartEvents(body, boundary);
  let purpose: string | undefined;
  let file: { filename: string; bytes: number } | undefined;
  try {
    for (;;) {
      const result = await next(events);
      if (result.done) break;
      const event = result.value;
      if (event.type !== 'part') continue;
      // The part's data, up to its end.
      const data = async function* (): AsyncGenerator<Uint8Array> {
        for (;;) {
          const item = await next(events);
          if (item.done) throw invalidRequest('Malformed multipart body: it ended inside a part.');
          if (item.value.type === 'end') return;
          if (item.value.type === 'data') yield item.value.bytes;
        }
      };
      if (event.name === 'file' && file === undefined) {
        // PostgreSQL cannot store a NUL character (a 500 before).
        if (typeof event.filename === 'string' && isUnstorableText(event.filename)) {
          throw invalidRequest("Invalid value for 'file': its filename must not contain NUL characters.", 'file', 'invalid_value');
        }
        try {
          const bytes = await dependencies.blobs.put(id, data(), { maxBytes: dependencies.maxBytes });
          file = { filename: event.filename ?? 'upload', bytes };
        } catch (error) {
          if (error instanceof BlobTooLargeError) {
            await discardRest(eventBytes(events));
            throw fileTooLarge(dependencies.maxBytes);
          }
          throw error;
        }
      } else {
        // A text field (kept when it is `purpose`), or a part we ignore; never more than MAX_FIELD_BYTES.
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of data()) {
          size += chunk.byteLength;
          if (size > MAX_FIELD_BYTES) throw invalidRequest(`The form field '${event.name}' is too long.`, event.name);
          chunks.push(Buffer.from(chunk));
        }
        if (event.name === 'purpose') purpose = Buffer.concat(chunks).toString('utf8').trim();
      }
    }
    if (file === undefined) throw missingParameter('file');
    if (purpose === undefined || purpose === '') throw missingParameter('purpose');
    checkPurpose(purpose);
    const record: FileRecord = { id, project, purpose, filename: file.filename, bytes: file.bytes, createdAt: Date.now() };
    await dependencies.files.create(record);
    return context.json(fileObject(record));
  } catch (error) {
    await events.return(undefined).catch(() => undefined);
    if (file !== undefined) await dependencies.blobs.delete(id).catch(() => undefined);
    throw error;
  }
}

function listOptions(context: Context<AppEnv>): { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' } {
  const query = context.req.query();
  const options: { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' } = { limit: MAX_LIST_LIMIT, order: 'desc' };
  if (query.purpose !== undefined && query.purpose !== '') {
    if (!(OUTPUT_FILE_PURPOSES as readonly string[]).includes(query.purpose)) checkPurpose(query.purpose);
    options.purpose = query.purpose;
  }
  if (query.limit !== undefined) {
    const limit = Number(query.limit);
    if (!/^\d+$/.test(query.limit) || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw invalidRequest(`Invalid 'limit': expected an integer between 1 and ${MAX_LIST_LIMIT}.`, 'limit', 'invalid_value');
    }
    options.limit = limit;
  }
  if (query.order !== undefined) {
    if (query.order !== 'asc' && query.order !== 'desc') throw invalidRequest("Invalid value for 'order': expected one of 'asc', 'desc'.", 'order', 'invalid_value');
    options.order = query.order;
  }
  if (query.after !== undefined && query.after !== '') options.after = query.after;
  return options;
}

/** Filenames in Content-Disposition: ASCII fallback plus the UTF-8 form. */
function contentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export function filesRoutes(dependencies: FilesDependencies): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.post('/', (context) => upload(context, dependencies));

  routes.get('/', async (context) => {
    const options = listOptions(context);
    const records = await dependencies.files.list({ project: context.get('principal').project, ...options, limit: options.limit + 1 });
    const page = records.slice(0, options.limit);
    return context.json({
      object: 'list',
      data: page.map(fileObject),
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: records.length > options.limit,
    });
  });

  routes.get('/:id', async (context) => {
    const id = context.req.param('id');
    const record = await dependencies.files.get(context.get('principal').project, id);
    if (record === null) throw noSuchFile(id);
    return context.json(fileObject(record));
  });

  routes.get('/:id/content', async (context) => {
    const id = context.req.param('id');
    const record = await dependencies.files.get(context.get('principal').project, id);
    if (record === null) throw noSuchFile(id);
    const stream = await dependencies.blobs.get(record.id);
    if (stream === null) throw noSuchFile(id);
    return context.body(Readable.toWeb(stream) as ReadableStream<Uint8Array>, 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(record.bytes),
      'content-disposition': contentDisposition(record.filename),
    });
  });

  routes.delete('/:id', async (context) => {
    const id = context.req.param('id');
    if (!(await dependencies.files.delete(context.get('principal').project, id))) throw noSuchFile(id);
    await dependencies.blobs.delete(id).catch(() => undefined);
    return context.json({ id, object: 'file' as const, deleted: true });
  });
  return routes;
}
