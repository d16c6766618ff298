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
  /**
   * In a `node:cluster` worker whose primary holds the lock: the primary's
   * pid. `singleInstance` returns such a `Lock` there instead of exiting; it
   * stands for the primary's hold: `release()` lets go of this object only,
   * and `update()` throws (`ERR_INVALID_STATE`): the record is the primary's.
   */
  declare readonly clusterPrimary?: number
  #backend: Pick<Backend, 'release' | 'update'>
  #loc: Location
  #handle: unknown
  #data: string | undefined
  #released = false

  // Private, so that the published declaration is `private constructor()`
  // and a consumer's `new Lock()` does not compile; the token keeps
  // JavaScript out. `construct`, below, is the one way in.
  private constructor(t: symbol, backend: Pick<Backend, 'release' | 'update'>, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false) {
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
    return parseRecord(this.#record(this.#data))!
  }

  /**
   * Replaces the holder's `data` (e.g. the port, once bound), as shown to
   * `inspect()`, `list()` and `instance-lock status`.
   *
   * @example
   * const lock = singleInstance('web')
   * server.listen(0, () => lock.update({ port: server.address().port }))
   */
  update(data: Record<string, unknown>): void {
    const json = checkData(data)
    if (this.#released) {
      const err = new Error(`Lock "${this.name}" was released; its data can no longer be updated`) as Error & { code: string }
      err.code = 'ERR_INVALID_STATE'
      throw err
    }
    this.#backend.update(this.#loc, this.#handle, this.#record(json))
    this.#data = json
  }

  #record(data: string | undefined): string {
    return makeRecord(this.#loc, data, isoAt(this.acquiredAt.getTime()), this.clusterPrimary)
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
    // A cluster worker's Lock is not in the registry; the worker may since
    // have taken the lock itself, under another Lock.
    if (registry.get(this.#loc.id) === this) registry.delete(this.#loc.id)
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

const construct = Lock as unknown as new (...args: [symbol, Pick<Backend, 'release' | 'update'>, Location, unknown, Date, string | undefined, boolean?]) => Lock

export function newLock(backend: Backend, loc: Location, handle: unknown, acquiredAt: Date, data: string | undefined, recovered = false): Lock {
  const lock = new construct(token, backend, loc, handle, acquiredAt, data, recovered)
  registry.set(loc.id, lock)
  return lock
}

// What a cluster worker's Lock does with the primary's hold: nothing to let
// go of in this process, and no descriptor to write the record through.
const heldByPrimary: Pick<Backend, 'release' | 'update'> = {
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
