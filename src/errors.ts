import { getSystemErrorName } from 'node:util'
import type { Holder } from './types.js'

/**
 * Thrown (or rejected with) when a lock is held by another process, or by
 * this process through another `Lock`.
 *
 * It reports a condition, not a bug, and is thrown on the fast path of every
 * failed `tryLock`: capturing a stack trace would cost more than the lock's
 * system calls, so its `stack` is just its name and message.
 *
 * @example
 * try { tryLock('web') } catch (err) {
 *   if (err instanceof LockedError) console.log(`held by pid ${err.holder?.pid}`)
 * }
 */
export class LockedError extends Error {
  /** `'LockedError'` (on the prototype, as Node's own errors have it). */
  declare readonly name: 'LockedError'
  readonly code = 'ELOCKED' as const
  /** Who holds it, when the holder's record could be read. */
  readonly holder?: Holder

  constructor(message: string, holder?: Holder) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      // With no frames to capture, `stack` is "LockedError: <message>".
      super(message)
    } finally {
      Error.stackTraceLimit = limit
    }
    if (holder !== undefined) this.holder = holder
  }
}
Object.defineProperty(LockedError.prototype, 'name', { value: 'LockedError', writable: true, configurable: true })

interface CodedError extends Error {
  code: string
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  const err = new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(actual)}`) as TypeError & CodedError
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

export function invalidArgValue(name: string, reason: string): TypeError {
  const err = new TypeError(`Invalid \`${name}\`: ${reason}`) as TypeError & CodedError
  err.code = 'ERR_INVALID_ARG_VALUE'
  return err
}

export function outOfRange(name: string, expected: string, actual: unknown): RangeError {
  const err = new RangeError(`Expected \`${name}\` to be ${expected}, got ${describe(actual)}`) as RangeError & CodedError
  err.code = 'ERR_OUT_OF_RANGE'
  return err
}

export function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as CodedError
  err.name = 'AbortError'
  err.code = 'ABORT_ERR'
  return err
}

/**
 * `Lock.signal`'s reason: the lock was lost under its holder. On Unix its
 * file was deleted or replaced, so another process can have taken a new
 * file at the same path, and the two both believe they hold it.
 */
export function lockLostError(what: string, path: string): Error {
  const err = new Error(`${what} was lost: its lock file ${path} was deleted or replaced, and another process may now hold it`) as CodedError & { path: string }
  err.code = 'ELOCKLOST'
  err.path = path
  return err
}

export interface SystemError extends Error {
  code: string
  errno: number
  syscall: string
  path?: string
}

/**
 * The one place where an OS error number from the addon becomes a Node-style
 * error (`code`, `errno`, `syscall`, `path`), so callers can switch on
 * `err.code` exactly as with `fs`.
 */
export function systemError(errno: number, syscall: string, path?: string, detail?: string): SystemError {
  const code = errnoName(errno)
  const where = path === undefined ? syscall : `${syscall} '${path}'`
  const err = new Error(`${code}: ${detail ?? describeErrno(code)}, ${where}`) as SystemError
  err.code = code
  err.errno = -Math.abs(errno)
  err.syscall = syscall
  if (path !== undefined) err.path = path
  return err
}

/** Re-throws an error from the addon as a SystemError naming `path`. */
export function fromNative(err: unknown, path: string): never {
  const e = err as { errno?: unknown; syscall?: unknown }
  if (e !== null && typeof e === 'object' && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    throw systemError(e.errno, e.syscall, path)
  }
  throw err
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno))
  } catch {
    return `E${Math.abs(errno)}`
  }
}

const descriptions: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ELOOP: 'a symbolic link is where the lock file should be',
  EMLINK: 'the lock file has other hard links; refusing to use it',
  EISDIR: 'a directory is where the lock file should be',
  EINVAL: 'not a regular file',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'not a directory',
}

function describeErrno(code: string): string {
  return descriptions[code] ?? code
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)})`
  if (typeof value === 'number') return `${value}`
  if (Array.isArray(value)) return 'an array'
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`
}
