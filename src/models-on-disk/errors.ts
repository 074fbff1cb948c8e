/** An expected failure of `pull` or `models`: printed as one line, exit code given. */
export class PullError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'PullError';
  }
}

/** A short description of a network or file-system error, without a stack. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const causeCode = cause && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
  const parts = [error.message];
  if (cause && cause.message && !error.message.includes(cause.message)) parts.push(cause.message);
  const shownCode = code ?? causeCode;
  if (shownCode && !parts.some((part) => part.includes(shownCode))) parts.push(shownCode);
  return parts.join(': ');
}
