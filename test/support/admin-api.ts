/** One call of the admin API (`/admin/...`) of a running Chatgate, as the contract tests make it. */
export interface AdminAnswer {
  status: number;
  /** The body as text (JSON lines exports are not one JSON value). */
  text: string;
  /** The body parsed as JSON, or null when it is not one JSON value. */
  json: any;
}

/** `serverUrl` is the server's URL with or without its `/v1` suffix. */
export async function adminRequest(serverUrl: string, key: string, method: string, path: string, body?: unknown): Promise<AdminAnswer> {
  const response = await fetch(`${serverUrl.replace(/\/v1$/, '')}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON lines or empty
  }
  return { status: response.status, text, json };
}
