import { lstatSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { getSystemErrorMap } from 'node:util'
import type { Holder } from '../api/types.js'

/**
 * Thrown (or rejected with) when a lock is held by another process, or by
 * this process through another `Lock`.
 *
 * It reports a condition, not a bug, and is thrown on the fast path of every
 * failed `tryLock`: capturing a stack trace would cost more than the lock's
 * system calls, so its `stack` is just its name and message (a speed
 * measure: ./speed.ts).
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

  /**
   * Any LockedError is one, whichever entry point made it:
   * `instance-lock/postgres` has a class of its own, whose `holder` is a
   * `ClusterHolder`, and `err instanceof LockedError` holds for its errors too.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isLockedError(x)
  }
}
Object.defineProperty(LockedError.prototype, 'name', { value: 'LockedError', writable: true, configurable: true })

/** An Error named LockedError with code ELOCKED: what `instanceof` asks of both entry points' classes. */
export function isLockedError(x: unknown): boolean {
  return x instanceof Error && x.name === 'LockedError' && (x as { code?: unknown }).code === 'ELOCKED'
}

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

let uvErrors: Map<number, [string, string]> | undefined

/**
 * The code and text of a libuv error number: the table `fs` takes its
 * messages from, so ours read exactly as its do ("too many open files").
 */
function uvError(errno: number): [string, string] {
  uvErrors ??= getSystemErrorMap()
  return uvErrors.get(errno) ?? ['UNKNOWN', `unknown error ${errno}`]
}

/**
 * The one place where an OS error becomes a Node-style error, shaped and
 * worded as `fs` words its own: `code`, negative `errno`, `syscall`, `path`
 * and "CODE: text, syscall 'path'". `errno` is an errno (either sign) on
 * Unix, a libuv error number anywhere. The text is libuv's, or `detail`, or
 * for `open` the package's explanation of what is wrong at a lock file's
 * path (see lockFileDetail).
 */
export function systemError(errno: number, syscall: string, path?: string, detail?: string): SystemError {
  const n = -Math.abs(errno)
  const [code, text] = uvError(n)
  const why = detail ?? (syscall === 'open' && path !== undefined ? lockFileDetail(code, path) : undefined) ?? text
  const err = new Error(`${code}: ${why}, ${path === undefined ? syscall : `${syscall} '${path}'`}`) as SystemError
  err.code = code
  err.errno = n
  err.syscall = syscall
  if (path !== undefined) err.path = path
  return err
}

/**
 * A system error from the addon, or from `fs` on a descriptor, that names
 * no path yet, as a SystemError naming `path` (the lock file or directory it
 * concerns); anything else (an fs error naming its path, a SystemError
 * already made, an AbortError, a bug) as it is. Every call into the addon
 * that can throw goes through here or fromNative.
 */
export function withPath(err: unknown, path: string): unknown {
  const e = err as { errno?: unknown; syscall?: unknown; path?: unknown }
  if (e !== null && typeof e === 'object' && typeof e.errno === 'number' && typeof e.syscall === 'string' && e.path === undefined) {
    return systemError(e.errno, e.syscall, path)
  }
  return err
}

/** Throws withPath(err, path). */
export function fromNative(err: unknown, path: string): never {
  throw withPath(err, path)
}

/**
 * What the lock-file checks found at `path`, said plainly: the kernel's (or
 * the addon's) code stays, but "too many levels of symbolic links" or "no
 * such device or address" would not tell the user that something other
 * than a lock file was put there.
 */
function lockFileDetail(code: string, path: string): string | undefined {
  switch (code) {
    case 'ELOOP':
      return 'a symbolic link is where the lock file should be; it is never followed'
    case 'EMLINK':
      return 'the lock file has other hard links; refusing to use it'
    case 'EISDIR':
      return 'a directory is where the lock file should be'
    case 'EINVAL': // the addon's answer for a FIFO or a device file
    case 'ENXIO': // open's answer for a socket
      return `${specialFileAt(path) ?? 'something other than a regular file'} is where the lock file should be (a lock file must be a regular file)`
  }
  return undefined
}

function specialFileAt(path: string): string | undefined {
  let st: Stats | undefined
  try {
    st = lstatSync(path, { throwIfNoEntry: false })
  } catch {
    return undefined
  }
  if (st === undefined) return undefined
  if (st.isSocket()) return 'a socket'
  if (st.isFIFO()) return 'a FIFO (named pipe)'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device file'
  return undefined
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)})`
  if (typeof value === 'number') return `${value}`
  if (Array.isArray(value)) return 'an array'
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`
}
