/**
 * Whether an error means the database cannot be reached or will not serve now, as opposed to a
 * query that failed: the server refuses or drops connections (stopped, restarting, shutting down,
 * out of connection slots), or the pool waited too long for one. An API answers such a request
 * 503 with Retry-After (the client may try the same request again later) instead of 500.
 * Narrower than `isTransientDatabaseError` (errors.ts): a serialization failure or a deadlock is
 * worth retrying inside the service, but the database is up.
 *
 * SQLSTATE (PostgreSQL appendix A): class 08 connection exception; 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now; 53300 too_many_connections. Node's socket error
 * codes, and the messages `pg` gives for a connection that went away or could not be had in time.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)/i;

/** How long a client is asked to wait before retrying while the database is unavailable (seconds). */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Causes followed at most this deep (`cause`, AggregateError's `errors`). */
const CAUSE_DEPTH_MAX = 4;

export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > CAUSE_DEPTH_MAX) return false;
  const { code, message, cause, errors } = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code))) return true;
    if (UNAVAILABLE_SOCKET_CODES.has(code)) return true;
  }
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  // Node reports a refused connection to a name with several addresses as an AggregateError.
  if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return cause !== undefined && isDatabaseUnavailable(cause, depth + 1);
}
