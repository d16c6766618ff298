import type { Location } from './backend.js'
import { LockedError, invalidArgType, lockLostError } from './errors.js'
import { parseRecord, type RecordScope } from './record.js'
import type { Holder, Scope } from '../api/types.js'
import { checkData } from '../api/validate.js'
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

/** Where a held lock is: a local lock's `Location`, or a PostgreSQL lock's, whose scope is `'cluster'`. */
export type HeldAt = Omit<Location, 'scope'> & { scope: RecordScope }

/**
 * What a `Lock` asks of the backend that holds it: the one contract between
 * the shared `Lock` (its validation, state, record, `signal`, disposal) and
 * a backend, local or not. `H` is the backend's handle on the held lock.
 */
export interface Holding<L extends HeldAt = HeldAt, H = unknown> {
  /** The holder record to write (src/core/record.ts `makeRecord`, with this backend's host name). */
  record(loc: L, data: string | undefined, at: number, pid: number, ready: boolean): string
  /**
   * Writes a new record for the held lock. A backend that writes it later
   * (a server, a round trip away) returns a promise that settles, never
   * rejecting, once it is written or can no longer be; `update()` and
   * `ready()` return it (typed so in `PostgresLock`).
   */
  update(loc: L, handle: H, record: string): void | Promise<void>
  /**
   * Lets go of the lock. `shared`: the handle was handed to a child process
   * (`instance-lock run`), which holds the lock on; only our own reference
   * is dropped. A promise: the lock is free once it settles (a server's
   * round trip); `await lock[Symbol.asyncDispose]()` waits for it.
   */
  release(loc: L, handle: H, shared: boolean): void | Promise<void>
  /** Polled, once `signal` is read: whether the lock was lost under its holder. */
  lost?(loc: L, handle: H): boolean
  /**
   * Pushed: watches the held lock from acquisition (a session's heartbeat),
   * and calls `lose` with the `ELOCKLOST` error when it is lost. Returns the
   * function that stops watching, called at release.
   */
  watch?(loc: L, handle: H, lose: (err: Error) => void): () => void
  /** The descriptor a child can inherit to hold the lock (`instance-lock run`). */
  descriptor?(handle: H): number
  /** Starts accepting messages for the lock; absent where a lock has no endpoint. */
  listen?(loc: L, handler: MessageHandler): Listener
  /** Fields the holder shows beyond its record (a PostgreSQL session's `backendPid`). */
  holderFields?(handle: H): Record<string, unknown>
}

type AnyHolding = Holding<HeldAt, unknown>

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

// Node 20.0–20.3 predate these symbols; later versions define them, and
// TypeScript's `using` looks them up at run time.
const dispose: typeof Symbol.dispose = Symbol.dispose ?? (Symbol.for('nodejs.dispose') as typeof Symbol.dispose)
const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose)

// What makes an object a Lock for `instanceof`, whichever copy of this
// module made it: the main entry's bundle and instance-lock/postgres's each
// have one.
const brand = Symbol.for('instance-lock.Lock')

/**
 * A held lock. Released by `release()`, by `using`, or when the process ends
 * in any way (the kernel frees it, even after SIGKILL).
 *
 * @example
 * using lock = tryLock('nightly-report')
 * await buildReport()
 * // released here
 */
export class Lock implements Disposable, AsyncDisposable {
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
  /**
   * PostgreSQL locks only (`instance-lock/postgres`): the fencing token, a
   * transaction id the server assigned while this holder held the lock, so
   * strictly greater than the fence of every earlier holder. Pass it with
   * every write the lock protects, and have the store refuse a write whose
   * fence is lower than one it has seen.
   */
  declare readonly fence?: bigint
  #ops: AnyHolding
  #loc: HeldAt
  #handle: unknown
  #data: string | undefined
  #ready = false
  #released = false
  #lostController: AbortController | undefined
  #unwatch: (() => void) | undefined
  #listener: Listener | undefined
  #releasing: Promise<void> | undefined
  // What the last update() or ready() returned: a PostgreSQL lock's promise
  // that the record is on the server, which ready() called again returns.
  #written: void | Promise<void> = undefined

  // Private, so that the published declaration is `private constructor()`
  // and a consumer's `new Lock()` does not compile; the token keeps
  // JavaScript out. `construct`, below, is the one way in.
  private constructor(t: symbol, ops: AnyHolding, loc: HeldAt, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false) {
    if (t !== token) throw new TypeError('Lock objects come from tryLock(), lock() or singleInstance()')
    this.name = loc.name
    if (loc.key !== undefined) this.key = loc.key
    // 'cluster' for a PostgreSQL lock, whose type (PostgresLock) says so.
    this.scope = loc.scope as Scope
    this.path = loc.path
    this.acquiredAt = acquiredAt
    if (recovered) this.recovered = true
    this.#ops = ops
    this.#loc = loc
    this.#handle = handle
    this.#data = data
    if (ops.watch !== undefined) {
      const controller = (this.#lostController = new AbortController())
      this.#unwatch = ops.watch(loc, handle, (err) => {
        if (!this.#released) controller.abort(err)
      })
    }
  }

  /** Any Lock is one, whichever entry point (`instance-lock`, `instance-lock/postgres`) made it. */
  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[brand] === true
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
   * within about a second (checked every 1000 ms, from the first time
   * `signal` is read). On Windows a mutex cannot be lost, and it never
   * aborts. A PostgreSQL lock is lost when its session ends or the server is
   * unreachable for `lostAfter` ms (watched from acquisition). Releasing
   * does not abort it.
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
      const ops = this.#ops
      if (ops.lost !== undefined && !this.#released) {
        watch(this, () => {
          if (!ops.lost!(this.#loc, this.#handle)) return false
          controller.abort(lockLostError(describeLock(this.#loc), this.path))
          return true
        })
      }
    }
    return this.#lostController.signal
  }

  /** What this process recorded as holder. */
  get holder(): Holder {
    const h = parseRecord(this.#record(this.#data, this.#ready), this.#loc)!
    const more = this.#ops.holderFields?.(this.#handle)
    // 'cluster' for a PostgreSQL lock, whose type (ClusterHolder) says so.
    return (more === undefined ? h : Object.assign(h, more)) as Holder
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
    const written = (this.#written = this.#ops.update(this.#loc, this.#handle, this.#record(json, this.#ready)))
    this.#data = json
    // A local lock's record is written when this returns: nothing to return.
    return written as void
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
    if (this.#ready && data === undefined) return this.#written as void
    const written = (this.#written = this.#ops.update(this.#loc, this.#handle, this.#record(json, true)))
    this.#data = json
    this.#ready = true
    return written as void
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
    else if (this.#ops.listen !== undefined) this.#listener = this.#ops.listen(this.#loc, handler)
    else {
      const err = new Error(`${describeLock(this.#loc)} takes no messages: they reach the holder of a lock on this machine only`) as Error & { code: string }
      err.code = 'ENOTSUP'
      throw err
    }
  }

  #assertHeld(what: string): void {
    if (!this.#released) return
    const err = new Error(`Lock "${this.name}" was released; ${what}`) as Error & { code: string }
    err.code = 'ERR_INVALID_STATE'
    throw err
  }

  #record(data: string | undefined, ready: boolean): string {
    return this.#ops.record(this.#loc, data, this.acquiredAt.getTime(), this.clusterPrimary ?? process.pid, ready)
  }

  /**
   * Releases the lock. Idempotent. A PostgreSQL lock is free once the unlock
   * reaches the server, a round trip later: `await lock[Symbol.asyncDispose]()`
   * waits for that.
   */
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
    this.#unwatch?.()
    // While the lock is still ours: only its holder may remove the endpoint.
    this.#listener?.close()
    const r = this.#ops.release(this.#loc, this.#handle, shared)
    if (r !== undefined) this.#releasing = r
  }

  /** Same as `release()`: `using lock = tryLock('x')` releases at the end of the block. */
  [dispose](): void {
    this.release()
  }

  /** Releases, and resolves once the lock is free (for a PostgreSQL lock, once the server has freed it): `await using`. */
  async [asyncDispose](): Promise<void> {
    this.release()
    await this.#releasing
  }

  static {
    // Asked of the registry's locks only: this machine's.
    locationOf = (lock) => lock.#loc as Location
    passOn = (lock) => {
      const fd = lock.#released ? undefined : lock.#ops.descriptor?.(lock.#handle)
      return fd === undefined ? undefined : { fd, letGo: () => lock.#letGo(true) }
    }
    Object.defineProperty(Lock.prototype, brand, { value: true })
  }
}

const construct = Lock as unknown as new (...args: [symbol, AnyHolding, HeldAt, unknown, Date, string | undefined, boolean?]) => Lock

/** A lock of this machine, just acquired: in the registry until released. */
export function newLock<H>(ops: Holding<Location, H>, loc: Location, handle: H, acquiredAt: Date, data: string | undefined, recovered = false): Lock {
  const lock = new construct(token, ops, loc, handle, acquiredAt, data, recovered)
  registry.set(loc.id, lock)
  return lock
}

/**
 * A lock held on a server (PostgreSQL), just acquired, with its fence. Not in
 * the registry, which answers for this machine's locks: the server refuses
 * a second holder.
 */
export function serverLock<L extends HeldAt, H>(ops: Holding<L, H>, loc: L, handle: H, acquiredAt: Date, data: string | undefined, fence: bigint): Lock {
  const lock = new construct(token, ops, loc, handle, acquiredAt, data)
  ;(lock as { fence?: bigint }).fence = fence
  return lock
}

/**
 * A node:cluster worker's `Lock` for the lock its primary holds (cluster.ts
 * decides when): the primary's name, path, start time and data, and
 * `clusterPrimary`. Not in the registry: this process holds nothing, and has
 * nothing to let go of, no descriptor to write the record through, no
 * messages to take; `local` is what makes its record.
 */
export function primaryLock(loc: Location, primary: Holder, local: Holding<Location>): Lock {
  const data = primary.data === undefined ? undefined : JSON.stringify(primary.data)
  const heldByPrimary: Holding<Location> = {
    record: (...args) => local.record(...args),
    release() {},
    update() {
      const err = new Error(`${describeLock(loc)} is held by the cluster primary (pid ${primary.pid}): update its data there`) as Error & { code: string }
      err.code = 'ERR_INVALID_STATE'
      throw err
    },
  }
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

export function describeLock(loc: Pick<HeldAt, 'name' | 'key' | 'scope'>): string {
  return `Lock "${loc.name}"${loc.key === undefined ? '' : ` for ${JSON.stringify(loc.key)}`}${loc.scope === 'machine' ? ' (machine scope)' : ''}`
}
