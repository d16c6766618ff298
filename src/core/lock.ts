import type { Backend, Location } from './backend.js'
import { LockedError, invalidArgType, lockLostError } from './errors.js'
import { makeRecord, parseRecord } from './record.js'
import type { Holder, Scope } from '../api/types.js'
import { checkData } from '../api/validate.js'
import { loadMessages } from '../messages/load.js'
import type { Listener } from '../messages/index.js'
import type { MessageHandler } from '../messages/types.js'

/**
 * The locks this process holds, by location. A second acquisition in this
 * process is refused from here (Windows mutexes are recursive; on Unix it
 * keeps the answer exact and cheap), and `inspect` answers from here for our
 * own locks instead of probing. Holding the `Lock` here also means a lock is
 * never released by garbage collection: only by `release()` or exit.
 */
export const registry = new Map<string, Lock>()

const token = Symbol('instance-lock')

/** What a Lock asks of its backend. */
type LockOps = Pick<Backend, 'release' | 'update' | 'lost' | 'descriptor'>

/**
 * How often the locks whose `signal` was read are checked for loss, in ms:
 * the bound on how late `signal` aborts. Cheap enough (one stat per lock) to
 * run for any number of locks, rare enough not to matter.
 */
const LOST_CHECK_INTERVAL = 1000

// The locks whose `signal` was read and that are still held, each with its
// check; one unreferenced timer checks them all, and runs only while there
// are some. A lock that has never had its `signal` read costs nothing.
const watched = new Map<Lock, () => boolean>()
let watchTimer: NodeJS.Timeout | undefined

function checkWatched(): void {
  for (const [lock, lost] of watched) {
    if (lost()) unwatch(lock)
  }
}

function watch(lock: Lock, lost: () => boolean): void {
  watched.set(lock, lost)
  if (watchTimer === undefined) watchTimer = setInterval(checkWatched, LOST_CHECK_INTERVAL).unref()
}

function unwatch(lock: Lock): void {
  if (!watched.delete(lock) || watched.size > 0 || watchTimer === undefined) return
  clearInterval(watchTimer)
  watchTimer = undefined
}

/** Where a Lock of this process is: for `list()`, which answers for our own locks. */
export let locationOf: (lock: Lock) => Location

/**
 * The one way into a held Lock from outside the library's core, for
 * `instance-lock run`: the descriptor COMMAND inherits, so that it holds the
 * lock itself, and `letGo`, which drops only this process's part once
 * COMMAND holds it on. Undefined where a lock cannot be passed on (Windows)
 * or once released.
 */
export let passOn: (lock: Lock) => { fd: number; letGo: () => void } | undefined

// Both are set by Lock's static block, below.

// Node 20.0–20.3 predate Symbol.dispose; later versions define it, and
// TypeScript's `using` looks it up at run time.
const dispose: typeof Symbol.dispose = Symbol.dispose ?? (Symbol.for('nodejs.dispose') as typeof Symbol.dispose)

/**
 * A held lock. Released by `release()`, by `using`, or when the process ends
 * in any way (the kernel frees it, even after SIGKILL).
 *
 * @example
 * using lock = tryLock('nightly-report')
 * await buildReport()
 * // released here
 */
export class Lock implements Disposable {
  /** The lock's name. */
  readonly name: string
  /** The canonical key, when the lock has one. */
  declare readonly key?: string
  readonly scope: Scope
  /** The lock file (Unix) or mutex name (Windows). */
  readonly path: string
  /** When this process acquired it. */
  readonly acquiredAt: Date
  /** Windows: the previous owner died holding it (WAIT_ABANDONED); the lock is ours. */
  declare readonly recovered?: boolean
  /**
   * In a `node:cluster` worker whose primary holds the lock: the primary's
   * pid. `singleInstance` returns such a `Lock` there instead of exiting; it
   * stands for the primary's hold: `release()` lets go of this object only,
   * and `update()` and `ready()` throw (`ERR_INVALID_STATE`): the record is
   * the primary's.
   */
  declare readonly clusterPrimary?: number
  #backend: LockOps
  #loc: Location
  #handle: unknown
  #data: string | undefined
  #ready = false
  #released = false
  #lostController: AbortController | undefined
  #listener: Listener | undefined

  // Private, so that the published declaration is `private constructor()`
  // and a consumer's `new Lock()` does not compile; the token keeps
  // JavaScript out. `construct`, below, is the one way in.
  private constructor(t: symbol, backend: LockOps, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false) {
    if (t !== token) throw new TypeError('Lock objects come from tryLock(), lock() or singleInstance()')
    this.name = loc.name
    if (loc.key !== undefined) this.key = loc.key
    this.scope = loc.scope
    this.path = loc.path
    this.acquiredAt = acquiredAt
    if (recovered) this.recovered = true
    this.#backend = backend
    this.#loc = loc
    this.#handle = handle
    this.#data = data
  }

  /** True once released. */
  get released(): boolean {
    return this.#released
  }

  /**
   * Aborts when the lock is lost while held, with an `Error` whose `code` is
   * `'ELOCKLOST'` as its `reason`. On Unix that is its lock file deleted or
   * replaced (by a user or a temp cleaner), after which another process may
   * take a new file at the same path and hold the lock too; it is noticed
   * within about a second (checked every 1000 ms). Releasing does not abort
   * it. On Windows a mutex cannot be lost, and it never aborts.
   *
   * Checking starts the first time `signal` is read, and stops at release.
   *
   * @example
   * const lock = singleInstance('scheduler')
   * lock.signal.addEventListener('abort', () => {
   *   console.error(lock.signal.reason.message)
   *   process.exit(1)
   * })
   */
  get signal(): AbortSignal {
    if (this.#lostController === undefined) {
      const controller = new AbortController()
      this.#lostController = controller
      const backend = this.#backend
      if (backend.lost !== undefined && !this.#released) {
        watch(this, () => {
          if (!backend.lost!(this.#loc, this.#handle)) return false
          controller.abort(lockLostError(describeLock(this.#loc), this.path))
          return true
        })
      }
    }
    return this.#lostController.signal
  }

  /** What this process recorded as holder. */
  get holder(): Holder {
    return parseRecord(this.#record(this.#data, this.#ready))!
  }

  /**
   * Replaces the holder's `data` (e.g. the port, once bound), as shown to
   * `inspect()`, `list()` and `instance-lock status`.
   *
   * @example
   * const lock = singleInstance('web')
   * server.listen(0, () => {
   *   const address = server.address() // an object once a TCP server listens
   *   if (address !== null && typeof address === 'object') lock.update({ port: address.port })
   * })
   */
  update(data: Record<string, unknown>): void {
    const json = checkData(data)
    this.#assertHeld('its data can no longer be updated')
    this.#backend.update(this.#loc, this.#handle, this.#record(json, this.#ready))
    this.#data = json
  }

  /**
   * Marks the holder ready (replacing its `data` when given): `waitFor(name,
   * { ready: true })` and `instance-lock wait NAME --ready` return once it is
   * called, and `status` shows `ready` instead of `starting`. Idempotent.
   *
   * @example
   * const lock = singleInstance('web')
   * server.listen(0, () => {
   *   const address = server.address() // an object once a TCP server listens
   *   if (address !== null && typeof address === 'object') lock.ready({ port: address.port })
   * })
   */
  ready(data?: Record<string, unknown>): void {
    const json = data === undefined ? this.#data : checkData(data)
    this.#assertHeld('it can no longer be marked ready')
    if (this.#ready && data === undefined) return
    this.#backend.update(this.#loc, this.#handle, this.#record(json, true))
    this.#data = json
    this.#ready = true
  }

  /**
   * Starts accepting messages from other processes (`send()`, a second
   * instance's `singleInstance({ onLocked: 'forward' })`, `instance-lock
   * send`): one at a time, in arrival order; the handler's awaited value is
   * the reply, what it throws the sender's `EREMOTE`. A second call replaces
   * the handler; `release()` stops it. Does not keep the process alive.
   *
   * @example
   * const lock = singleInstance('editor')
   * lock.onMessage(({ argv, cwd, data }) => {
   *   console.log('asked', data, 'by', argv, 'in', cwd)
   *   return { port: 3000 }
   * })
   */
  onMessage(handler: MessageHandler): void {
    if (typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler)
    this.#assertHeld('it can no longer accept messages')
    if (this.clusterPrimary !== undefined) {
      const err = new Error(`${describeLock(this.#loc)} is held by the cluster primary (pid ${this.clusterPrimary}): accept its messages there`) as Error & { code: string }
      err.code = 'ERR_INVALID_STATE'
      throw err
    }
    if (this.#listener !== undefined) this.#listener.handler = handler
    else this.#listener = loadMessages().listen(this.#loc, handler)
  }

  #assertHeld(what: string): void {
    if (!this.#released) return
    const err = new Error(`Lock "${this.name}" was released; ${what}`) as Error & { code: string }
    err.code = 'ERR_INVALID_STATE'
    throw err
  }

  #record(data: string | undefined, ready: boolean): string {
    return makeRecord(this.#loc, data, this.acquiredAt.getTime(), this.clusterPrimary, ready)
  }

  /** Releases the lock. Idempotent. */
  release(): void {
    this.#letGo(false)
  }

  #letGo(shared: boolean): void {
    if (this.#released) return
    this.#released = true
    // A cluster worker's Lock is not in the registry; the worker may since
    // have taken the lock itself, under another Lock.
    if (registry.get(this.#loc.id) === this) registry.delete(this.#loc.id)
    // Before the handle goes: it is what the check looks at.
    unwatch(this)
    // While the lock is still ours: only its holder may remove the endpoint.
    this.#listener?.close()
    this.#backend.release(this.#loc, this.#handle, shared)
  }

  /** Same as `release()`: `using lock = tryLock('x')` releases at the end of the block. */
  [dispose](): void {
    this.release()
  }

  static {
    locationOf = (lock) => lock.#loc
    passOn = (lock) => {
      const fd = lock.#released ? undefined : lock.#backend.descriptor?.(lock.#handle)
      return fd === undefined ? undefined : { fd, letGo: () => lock.#letGo(true) }
    }
  }
}

const construct = Lock as unknown as new (...args: [symbol, LockOps, Location, unknown, Date, string | undefined, boolean?]) => Lock

export function newLock(backend: Backend, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false): Lock {
  const lock = new construct(token, backend, loc, handle, acquiredAt, data, recovered)
  registry.set(loc.id, lock)
  return lock
}

// What a cluster worker's Lock does with the primary's hold: nothing to let
// go of in this process, and no descriptor to write the record through.
const heldByPrimary: LockOps = {
  release() {},
  update(loc) {
    const err = new Error(`${describeLock(loc)} is held by the cluster primary (pid ${process.ppid}): update its data there`) as Error & { code: string }
    err.code = 'ERR_INVALID_STATE'
    throw err
  },
}

/**
 * A node:cluster worker's `Lock` for the lock its primary holds (cluster.ts
 * decides when): the primary's name, path, start time and data, and
 * `clusterPrimary`. Not in the registry: this process holds nothing.
 */
export function primaryLock(loc: Location, primary: Holder): Lock {
  const data = primary.data === undefined ? undefined : JSON.stringify(primary.data)
  const lock = new construct(token, heldByPrimary, loc, undefined, new Date(primary.startedAt), data)
  ;(lock as { clusterPrimary?: number }).clusterPrimary = primary.pid
  return lock
}

export function lockedError(loc: Location, holder: Holder | undefined): LockedError {
  const what = describeLock(loc)
  if (holder === undefined) return new LockedError(`${what} is held by another process`)
  const by = holder.pid === process.pid ? 'this process' : `pid ${holder.pid}`
  return new LockedError(`${what} is held by ${by} (since ${holder.startedAt})`, holder)
}

export function describeLock(loc: Pick<Location, 'name' | 'key' | 'scope'>): string {
  return `Lock "${loc.name}"${loc.key === undefined ? '' : ` for ${JSON.stringify(loc.key)}`}${loc.scope === 'machine' ? ' (machine scope)' : ''}`
}
