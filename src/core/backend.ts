import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Scope } from '../api/types.js'

/** Where a lock lives; computed from its identity alone, with no side effects. */
export interface Location {
  name: string
  /** Canonical key. */
  key: string | undefined
  scope: Scope
  /** Lock file (Unix) or mutex name (Windows): `Lock.path`, `LockStatus.path`. */
  path: string
  /** Registry identity within this process. */
  id: string
}

/** Held elsewhere: the holder's record (JSON text), when readable. */
export interface Held {
  held: true
  record: string | null
}

export interface Acquired<H = unknown> {
  handle: H
  /** When it was acquired, ms since the epoch. */
  at: number
}

export interface Probe {
  held: boolean
  record: string | null
}

/** A lock file or mutex found by enumeration, with what its name tells. */
export interface Found {
  location: Location
  /** The key hash in the name, to check a record's key against. */
  keyHash: string | undefined
}

/**
 * What a platform provides. Everything else (validation, identity, records,
 * the registry, messages) is shared.
 */
export interface Backend<H = unknown> {
  locate(id: { name: string; key: string | undefined; keyHash: string | undefined; scope: Scope; dir: string | undefined }): Location
  acquire(loc: Location, record: string): H | Held
  /**
   * Waits until acquired (resolves the handle and when, in ms since the
   * epoch: `record(at)` is the record written), the deadline passes
   * (resolves `Held`), or `signal` aborts (rejects with an AbortError).
   * Never blocks the event loop or occupies the libuv thread pool.
   */
  wait(loc: Location, record: (at: number) => string, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Acquired<H> | Held>
  /**
   * Releases the lock. `shared`: the handle was handed to a child process
   * (`instance-lock run`), which holds the lock on after this process lets
   * go; only our own reference is dropped.
   */
  release(loc: Location, handle: H, shared?: boolean): void
  update(loc: Location, handle: H, record: string): void
  /**
   * Whether a held lock was lost under its holder (Unix: its file no longer
   * at its path, so another process may hold a new one). Absent where a lock
   * cannot be lost (Windows: a mutex owned is owned until released).
   */
  lost?(loc: Location, handle: H): boolean
  /**
   * Whether the system shows which process holds a lock, so that `holders`
   * and `taker` can name one (Linux: /proc/locks; Windows: the mutex's
   * owner). False where it cannot (macOS, the BSDs): nobody is then ever
   * signalled on a guess, and records are believed as written.
   */
  readonly provesHolders: boolean
  /**
   * When a process started, ms since the epoch (undefined when it cannot be
   * read): with `provesHolders`, what lets `core/holder.ts` tell a record's
   * process from a later one that reused its pid. Absent where the backend
   * verifies records itself (Windows).
   */
  processStart?(pid: number): number | undefined
  /**
   * Whether process `pid` holds the lock, as the system shows it to any user
   * (Linux: the taker in /proc/locks, or the process's own descriptors).
   * With `provesHolders`; what a message sender checks the endpoint's
   * process against.
   */
  heldBy?(loc: Location, pid: number): boolean
  /** Is it held, and by whom? Takes nothing; `null`: no lock object exists. */
  probe(loc: Location): Probe | null
  enumerate(scope: Scope, dir: string | undefined): Found[]
  /**
   * The pids that hold the lock right now, as the operating system proves it
   * (never the record alone: a pid read from a file is not proof). Empty when
   * free or when no holder could be proven.
   */
  holders(loc: Location): number[]
  /**
   * The process that took the lock, as the operating system records it:
   * passing the lock on to another process keeps it, a new acquisition
   * changes it. Undefined when free or not known.
   */
  taker(loc: Location): number | undefined
  /**
   * Ends a proven holder if it still holds the lock: `signal` on Unix; on
   * Windows the process is terminated. False when it no longer does, or has
   * exited, and nothing was signalled: never the process that has its pid now.
   */
  terminate(loc: Location, pid: number, signal: NodeJS.Signals): boolean
  /**
   * The descriptor a child process can inherit to hold the lock itself, as
   * under flock(1) (`instance-lock run`). Absent where a lock cannot be
   * passed on (Windows: a mutex belongs to the thread that owns it).
   */
  descriptor?(handle: H): number
  /**
   * A file the holder rewrites in place whenever its record changes
   * (acquisition, `update()`, `ready()`), for `waitFor` to watch instead of
   * only polling. Absent where records are replaced by rename (Windows).
   */
  recordFile?(loc: Location): string
}

export function isHeld(x: unknown): x is Held {
  return typeof x === 'object' && x !== null && (x as Held).held === true
}

/**
 * The names in a directory, sorted; none if it does not exist. A path that
 * is not a directory is an error (ENOTDIR), not an empty directory.
 */
export function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/**
 * Makes `dir` and its missing parents, one level at a time. Not
 * `mkdirSync(dir, { recursive: true })`: where mkdir fails with ENOENT under
 * an existing parent (/proc, /sys, a dying mount) Node's recursive mkdir
 * retries for ever; here every step is tried once, and a failure names the
 * directory it happened to. Something other than a directory on the way is
 * ENOTDIR.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = []
  for (let p = dir; ;) {
    const absent = makeDir(p)
    if (absent === undefined) break
    const parent = dirname(p)
    if (parent === p) throw absent
    missing.push(p)
    p = parent
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const absent = makeDir(missing[i]!)
    if (absent !== undefined) throw absent
  }
}

/** Makes one directory; returns the ENOENT error if its parent is missing. */
function makeDir(p: string): Error | undefined {
  try {
    mkdirSync(p)
    return undefined
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return err as Error
    if (code !== 'EEXIST') throw err
  }
  if (!statSync(p).isDirectory()) {
    const e: NodeJS.ErrnoException = new Error(`ENOTDIR: not a directory, mkdir '${p}'`)
    e.code = 'ENOTDIR'
    e.errno = process.platform === 'win32' ? -4052 : -20 // libuv's UV_ENOTDIR
    e.syscall = 'mkdir'
    e.path = p
    throw e
  }
  return undefined
}
