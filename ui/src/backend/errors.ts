/** An error the node (or the transport) reported, with a message fit to show a person. */
export class ApiError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly status?: number,
    readonly allowed?: string[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Turns whatever was thrown (ApiError, `{error, message}` over IPC, Error) into text. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'message' in e && typeof e.message === 'string') {
    return e.message;
  }
  return 'unknown error';
}
