import type { Backend, Location } from './backend.js'
import { LockedError } from './errors.js'
import { isoAt, makeRecord, parseRecord } from './record.js'
import type { Holder, Scope } from './types.js'
import { checkData } from './validate.js'

/**
 * The locks this process holds, by location. A second acquisition in this
 * process is refused from here (Windows mutexes are recursive; on Unix it
 * keeps the answer exact and cheap), and `inspect` answers from here for our
 * own locks instead of probing. Holding the `Lock` here also means a lock is
 * never released by garbage collection: only by `release()` or exit.
 */
export const registry = new Map<string, Lock>()

const token = Symbol('instance-lock')

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
  #backend: Backend
  #loc: Location
  #handle: unknown
  #data: string | undefined
  #ready = false
  #released = false

  /** @internal */
  constructor(t: symbol, backend: Backend, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false) {
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
   * server.listen(0, () => lock.ready({ port: server.address().port }))
   */
  ready(data?: Record<string, unknown>): void {
    const json = data === undefined ? this.#data : checkData(data)
    this.#assertHeld('it can no longer be marked ready')
    if (this.#ready && data === undefined) return
    this.#backend.update(this.#loc, this.#handle, this.#record(json, true))
    this.#data = json
    this.#ready = true
  }

  #assertHeld(what: string): void {
    if (!this.#released) return
    const err = new Error(`Lock "${this.name}" was released; ${what}`) as Error & { code: string }
    err.code = 'ERR_INVALID_STATE'
    throw err
  }

  #record(data: string | undefined, ready: boolean): string {
    return makeRecord(this.#loc, data, isoAt(this.acquiredAt.getTime()), process.pid, ready)
  }

  /** Releases the lock. Idempotent. */
  release(): void {
    this.#letGo(false)
  }

  /**
   * @internal Lets go of this process's part of a lock whose descriptor a
   * child process inherited (`instance-lock run`): the child holds it on.
   */
  releaseShared(): void {
    this.#letGo(true)
  }

  #letGo(shared: boolean): void {
    if (this.#released) return
    this.#released = true
    registry.delete(this.#loc.id)
    this.#backend.release(this.#loc, this.#handle, shared)
  }

  /** Same as `release()`: `using lock = tryLock('x')` releases at the end of the block. */
  [dispose](): void {
    this.release()
  }

  /** @internal */
  get location(): Location {
    return this.#loc
  }

  /** @internal */
  get handle(): unknown {
    return this.#handle
  }
}

export function newLock(backend: Backend, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false): Lock {
  const lock = new Lock(token, backend, loc, handle, acquiredAt, data, recovered)
  registry.set(loc.id, lock)
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
