/**
 * Whether a database error may go away by itself (the server restarting, a dropped connection,
 * a serialization conflict, no free connection): worth retrying the same work. Anything else —
 * a constraint violated, a value PostgreSQL cannot store (SQLSTATE 22021 for U+0000 in text,
 * 22P05 in jsonb), an error thrown by the code itself — gives the same answer on every retry.
 *
 * SQLSTATE classes (PostgreSQL appendix A): 08 connection exception, 40 transaction rollback
 * (serialization failure, deadlock), 53 insufficient resources, 57 operator intervention
 * (admin shutdown, cannot connect now), 58 system error; plus Node's socket error codes and
 * the `pg` driver's messages for a connection that went away.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '40', '53', '57', '58']);
const TRANSIENT_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const TRANSIENT_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down|in recovery mode)/i;

export function isTransientDatabaseError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
    if (TRANSIENT_SOCKET_CODES.has(code)) return true;
  }
  return typeof message === 'string' && TRANSIENT_MESSAGES.test(message);
}
