/**
 * A URL fit for messages and logs: its password (`user:pw@`) and query parameters that
 * carry a secret (`password`, `api_key`, `token`, …) replaced by `***`. Used for the start-up
 * lines (upstream base URLs, the database URL) and error messages.
 */
const SECRET_PARAMETER = /pass|secret|token|key|auth|sig/i;

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    parsed.searchParams.forEach((_, name) => {
      if (SECRET_PARAMETER.test(name)) parsed.searchParams.set(name, '***');
    });
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}
