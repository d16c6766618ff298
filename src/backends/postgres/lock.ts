import { checkData } from '../../api/validate.js'
import { coded, type Session } from './session.js'
import type { ClusterHolder } from './types.js'

/** @internal What a held lock needs of the `postgres()` object that made it. */
export interface Owner {
  readonly lostAfter: number
  /** Writes the holder record; resolves false where there is no record table. */
  writeRecord(s: Session, lockId: string, name: string, key: string | undefined, record: string): Promise<unknown>
  /** Lets go of the lock and gives the session back (or ends it). */
  giveBack(s: Session): Promise<void>
}

/** @internal */
export interface HeldLock {
  session: Session
  lockId: string
  name: string
  key: string | undefined
  path: string
  fence: bigint
  acquiredAt: Date
  data: string | undefined
}

const token = Symbol('instance-lock/postgres')

// Node 20.0–20.3 predate these symbols; TypeScript's `using` looks them up at run time.
const dispose: typeof Symbol.dispose = Symbol.dispose ?? (Symbol.for('nodejs.dispose') as typeof Symbol.dispose)
const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose)

let hostname: string | undefined

/** @internal The holder record: the local record's fields, with scope 'cluster'. */
export function makeRecord(name: string, key: string | undefined, startedAt: string, data: string | undefined, ready: boolean): string {
  hostname ??= (require('node:os') as typeof import('node:os')).hostname()
  return (
    `{"pid":${process.pid},"hostname":${JSON.stringify(hostname)},"startedAt":"${startedAt}",` +
    `"name":${JSON.stringify(name)},"scope":"cluster"` +
    (key === undefined ? '' : `,"key":${JSON.stringify(key)}`) +
    (data === undefined ? '' : `,"data":${data}`) +
    (ready ? ',"ready":true' : '') +
    '}'
  )
}

/**
 * A lock held on a PostgreSQL server: a session advisory lock on a session
 * of its own. The same surface as the local `Lock`, plus `fence`.
 *
 * The session is watched while held: a heartbeat every `lostAfter / 5` ms,
 * and the lock counts as lost (`signal` aborts with `ELOCKLOST`) when no
 * heartbeat sent in the last `0.8 × lostAfter` ms has been answered, when
 * the connection closes, or when the heartbeat is answered by another server
 * process than the one holding the lock (a pooler moved the connection).
 */
export class PostgresLock implements Disposable, AsyncDisposable {
  readonly name: string
  declare readonly key?: string
  readonly scope = 'cluster' as const
  /** The server and the advisory lock key. */
  readonly path: string
  /** When this process acquired it. */
  readonly acquiredAt: Date
  /**
   * Fencing token: a transaction id the server assigned while this holder
   * held the lock, so strictly greater than the fence of every earlier
   * holder of the lock (of any lock of the server, in fact). Pass it with
   * every write the lock protects, and have the store refuse a write whose
   * fence is lower than one it has seen.
   */
  readonly fence: bigint
  #owner: Owner
  #held: HeldLock
  #data: string | undefined
  #ready = false
  #released = false
  #lost = false
  #controller = new AbortController()
  #heartbeat: NodeJS.Timeout | undefined
  #lastOk: number
  #inFlight = false
  #unwatch: () => void
  #releasing: Promise<void> | undefined

  private constructor(t: symbol, owner: Owner, held: HeldLock) {
    if (t !== token) throw new TypeError('Lock objects come from tryLock(), lock() or singleInstance()')
    this.name = held.name
    if (held.key !== undefined) this.key = held.key
    this.path = held.path
    this.acquiredAt = held.acquiredAt
    this.fence = held.fence
    this.#owner = owner
    this.#held = held
    this.#data = held.data
    this.#lastOk = Date.now()
    const s = held.session
    this.#unwatch = s.onDeath((err) => this.#lose(err))
    s.onNotification = (n) => {
      // Only our own session listens on this channel (see locks.ts), and the
      // request names the lock: one for a lock this session held before is
      // not for this one. The verified holder exits as stop() would signal it.
      if (n.channel === `instance_lock_${s.pid}` && n.payload === `stop ${held.lockId}` && !this.#released && !this.#lost) process.kill(process.pid, 'SIGTERM')
    }
    const every = owner.lostAfter / 5
    this.#heartbeat = setInterval(() => this.#beat(every), every).unref()
  }

  /** @internal */
  static create(owner: Owner, held: HeldLock): PostgresLock {
    return new PostgresLock(token, owner, held)
  }

  /** True once released. */
  get released(): boolean {
    return this.#released
  }

  /**
   * Aborts when the lock is lost while held, with an `Error` whose `code` is
   * `'ELOCKLOST'` as its `reason`: the session ended (`pg_terminate_backend`,
   * a server restart), or the server has been unreachable for `lostAfter`
   * ms, which is before the server itself gives up on the session and could
   * hand the lock to another. Releasing does not abort it.
   */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** What this process recorded as holder. */
  get holder(): ClusterHolder {
    const h = JSON.parse(makeRecord(this.name, this.key, this.acquiredAt.toISOString(), this.#data, this.#ready)) as ClusterHolder
    h.backendPid = this.#held.session.pid
    return h
  }

  /** Replaces the holder's `data` in the record, as shown to `inspect()`, `list()` and `status`. */
  update(data: Record<string, unknown>): void {
    const json = checkData(data)
    this.#assertHeld('its data can no longer be updated')
    this.#data = json
    this.#write()
  }

  /** Marks the holder ready (replacing its `data` when given). Idempotent. */
  ready(data?: Record<string, unknown>): void {
    const json = data === undefined ? this.#data : checkData(data)
    this.#assertHeld('it can no longer be marked ready')
    if (this.#ready && data === undefined) return
    this.#data = json
    this.#ready = true
    this.#write()
  }

  /**
   * Releases the lock: the server frees it once the unlock reaches it, a
   * round trip later (`await lock[Symbol.asyncDispose]()` waits for that).
   * Idempotent.
   */
  release(): void {
    if (this.#released) return
    this.#released = true
    this.#stopWatching()
    this.#held.session.onNotification = undefined
    this.#releasing = this.#lost ? Promise.resolve() : this.#owner.giveBack(this.#held.session)
  }

  /** Same as `release()`: `using lock = await locks.tryLock('x')` releases at the end of the block. */
  [dispose](): void {
    this.release()
  }

  /** Releases, and resolves once the server has freed the lock: `await using`. */
  async [asyncDispose](): Promise<void> {
    this.release()
    await this.#releasing
  }

  /** @internal Resolves once a release has reached the server. */
  get releasing(): Promise<void> | undefined {
    return this.#releasing
  }

  #assertHeld(what: string): void {
    if (!this.#released) return
    throw coded(`Lock "${this.name}" was released; ${what}`, 'ERR_INVALID_STATE')
  }

  #write(): void {
    const h = this.#held
    const record = makeRecord(h.name, h.key, this.acquiredAt.toISOString(), this.#data, this.#ready)
    // Queued on the session behind any heartbeat; a session that fails it is
    // lost, and says so through `signal`.
    this.#owner.writeRecord(h.session, h.lockId, h.name, h.key, record).catch(() => {})
  }

  #beat(every: number): void {
    if (this.#released || this.#lost) return
    if (Date.now() - this.#lastOk > this.#owner.lostAfter - every) {
      this.#lose(new Error(`no answer from the server for ${Date.now() - this.#lastOk} ms`))
      return
    }
    if (this.#inFlight) return
    this.#inFlight = true
    const sent = Date.now()
    const s = this.#held.session
    s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid', undefined, false, 'il_beat').then(
      (rows) => {
        this.#inFlight = false
        if (rows[0]?.pid !== s.pid) this.#lose(new Error(`the connection now reaches server process ${rows[0]?.pid}, not ${s.pid}: a transaction-mode pooler is in between`))
        else this.#lastOk = Math.max(this.#lastOk, sent)
      },
      (err: Error) => {
        this.#inFlight = false
        this.#lose(err)
      },
    )
  }

  #lose(cause: Error): void {
    if (this.#released || this.#lost) return
    this.#lost = true
    this.#stopWatching()
    this.#held.session.destroy()
    const what = `Lock "${this.name}"${this.key === undefined ? '' : ` for ${JSON.stringify(this.key)}`}`
    const err = coded(`${what} was lost: its PostgreSQL session ended or became unreachable (${cause.message}); another process may hold it now`, 'ELOCKLOST', cause)
    ;(err as { path?: string }).path = this.path
    this.#controller.abort(err)
  }

  #stopWatching(): void {
    clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
    this.#unwatch()
  }
}
