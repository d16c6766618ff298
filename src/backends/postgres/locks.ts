import { abortError, isLockedError } from '../../core/errors.js'
import { checkBoolean, checkData, checkExitCode, checkKey, checkName, checkOnLocked, checkOptionsObject, checkSignal, checkTimeout } from '../../api/validate.js'
import { checkConfig, type Settings } from './config.js'
import { conflictMessage } from '../../core/format.js'
import { describeLock } from '../../core/lock.js'
import { advisoryKey } from './identity.js'
import { heldLock, holding, type Held, type Owner, type PostgresLock, type ServerLocation } from './lock.js'
import type { Holding } from '../../core/lock.js'
import { Records, type Found } from './records.js'
import { coded, Session } from './session.js'
import type { ClusterGuardOptions, ClusterHolder, ClusterLockOptions, ClusterLockStatus, ClusterStopOptions, ClusterStopResult, ClusterWaitOptions } from './types.js'

/**
 * Thrown (or rejected with) when a lock is held by another session. The
 * local API's error, with the holder's record when it names this lock.
 */
export class LockedError extends Error {
  declare readonly name: 'LockedError'
  readonly code = 'ELOCKED' as const
  /** Who holds it, when the holder's record names this lock. */
  readonly holder?: ClusterHolder

  constructor(message: string, holder?: ClusterHolder) {
    super(message)
    if (holder !== undefined) this.holder = holder
  }

  /** As the main entry's: any LockedError is one, whichever entry point made it. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isLockedError(x)
  }
}
Object.defineProperty(LockedError.prototype, 'name', { value: 'LockedError', writable: true, configurable: true })

/** Locks on one PostgreSQL database. */
export interface PostgresLocks {
  tryLock(name: string, options?: ClusterLockOptions): Promise<PostgresLock>
  lock(name: string, options?: ClusterWaitOptions): Promise<PostgresLock>
  singleInstance(name: string, options?: ClusterGuardOptions): Promise<PostgresLock>
  inspect(name: string, options?: { key?: string }): Promise<ClusterLockStatus>
  list(): Promise<ClusterLockStatus[]>
  stop(name: string, options?: ClusterStopOptions): Promise<ClusterStopResult>
  /** Closes idle connections; locks still held stay held until released. */
  close(): Promise<void>
}

// Takes the lock only if the statement runs in the server process the
// session was set up in: through a transaction-mode pooler it may not, and
// no row comes back instead of a lock held by a connection others share.
// The fence is taken in the same statement, once the lock is ours.
const TRY = `SELECT CASE WHEN pg_try_advisory_lock($1::int8) THEN txid_current()::text END AS fence
FROM (SELECT 1) one WHERE pg_backend_pid() = $2`
// The server queues the wait and wakes it the moment the lock is free; the
// subquery (never flattened: OFFSET 0) takes the lock before the fence.
const WAIT = `SELECT txid_current()::text AS fence
FROM (SELECT pg_advisory_lock($1::int8) FROM (SELECT 1) one WHERE pg_backend_pid() = $2 OFFSET 0) l`

/**
 * The waits of this process for each lock (by path: the server, the
 * database and the advisory key), whichever `postgres()` object asked, in
 * the order asked; the first's turn is now (see `#turn`).
 */
const turns = new Map<string, { go: () => void }[]>()

/** How long an unused connection is kept for the next acquisition. */
const IDLE_MS = 10_000
/** How often `stop` looks whether the holder has let go. */
const STOP_POLL_MS = 50
const STOP_TIMEOUT = 10_000

interface Identity {
  name: string
  key: string | undefined
  lockId: string
}

function identity(name: unknown, options: unknown): Identity & { o: Record<string, unknown> } {
  const n = checkName(name)
  const o = checkOptionsObject(options)
  const key = checkKey(o.key)
  return { name: n, key, lockId: advisoryKey(n, key), o }
}

function describe(id: Pick<Identity, 'name' | 'key'>): string {
  return describeLock({ ...id, scope: 'cluster' })
}

/** A connection that failed under an acquisition, said so, with the cause; the lock is not held. */
function dropped(settings: Settings, id: Identity, e: unknown): unknown {
  const cause = e as { code?: unknown; message?: unknown }
  // A statement prepared on this session, unknown where it ran: another server process.
  if (cause?.code === '26000') return poolerError(settings)
  if (typeof cause?.code === 'string' && cause.code !== '') return e
  const why = typeof cause?.message === 'string' ? cause.message : String(e)
  return coded(`The connection to PostgreSQL at ${settings.where} failed while acquiring ${describe(id)}: ${why}`, 'ECONNRESET', e)
}

/**
 * What comes first: `start`'s event (it is handed the function to call
 * then), the `timeout`, or an abort of `signal`. The timer and the listener
 * are gone once it resolves.
 */
function firstOf(start: (done: () => void) => void, timeout: number | undefined, signal: AbortSignal | undefined): Promise<'done' | 'timeout' | 'abort'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const finish = (how: 'done' | 'timeout' | 'abort'): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve(how)
    }
    const onAbort = (): void => finish('abort')
    if (timeout !== undefined && timeout !== Infinity) timer = setTimeout(() => finish('timeout'), timeout)
    signal?.addEventListener('abort', onAbort, { once: true })
    start(() => finish('done'))
  })
}

function poolerError(settings: Settings): Error {
  return coded(
    `Cannot hold a lock through ${settings.where}: consecutive statements ran in different server processes, as behind a transaction-mode pooler (PgBouncer pool_mode=transaction). Connect to the server directly or through a session-mode pool.`,
    'EPOOLER',
  )
}

class Locks implements PostgresLocks, Owner {
  readonly lostAfter: number
  #settings: Settings
  #idle: { s: Session; timer: NodeJS.Timeout }[] = []
  #records: Records
  #releases = new Set<Promise<void>>()
  #holding: Holding<ServerLocation, Held>

  constructor(settings: Settings) {
    this.#settings = settings
    this.lostAfter = settings.lostAfter
    this.#records = new Records(settings.schema)
    this.#holding = holding(this)
  }

  // ---- sessions ----

  async #take(): Promise<Session> {
    for (let e = this.#idle.pop(); e !== undefined; e = this.#idle.pop()) {
      clearTimeout(e.timer)
      if (!e.s.dead) return e.s
    }
    return Session.open(this.#settings)
  }

  #give(s: Session): void {
    if (s.dead) return
    const timer = setTimeout(() => {
      this.#idle = this.#idle.filter((e) => e.s !== s)
      void s.end()
    }, IDLE_MS).unref()
    this.#idle.push({ s, timer })
  }

  /** Runs `f` on a session of the pool; a session that failed is not given back. */
  async #with<T>(f: (s: Session) => Promise<T>): Promise<T> {
    const s = await this.#take()
    try {
      const r = await f(s)
      this.#give(s)
      return r
    } catch (e) {
      if (s.dead) throw e
      // A server error (not a lost connection) leaves the session usable.
      this.#give(s)
      throw e
    }
  }

  giveBack(s: Session): Promise<void> {
    const p = s
      .query('SELECT pg_advisory_unlock_all()', undefined, true, 'il_unlock')
      .then(
        () => this.#give(s),
        () => s.destroy(),
      )
      .finally(() => this.#releases.delete(p))
    this.#releases.add(p)
    return p
  }

  writeRecord(s: Session, lockId: string, name: string, key: string | undefined, record: string): Promise<unknown> {
    return this.#records.write(s, lockId, name, key, record)
  }

  // ---- acquiring ----

  tryLock(name: string, options?: ClusterLockOptions): Promise<PostgresLock> {
    return this.#acquire(name, options, false)
  }

  lock(name: string, options?: ClusterWaitOptions): Promise<PostgresLock> {
    return this.#acquire(name, options, true)
  }

  async #acquire(name: unknown, options: unknown, waits: boolean): Promise<PostgresLock> {
    const id = identity(name, options)
    const data = checkData(id.o.data)
    const timeout = waits ? checkTimeout(id.o.timeout) : 0
    const signal = waits ? checkSignal(id.o.signal) : undefined
    if (signal?.aborted) throw abortError(signal)
    const started = Date.now()
    if (timeout === 0) return this.#acquireNow(id, data, 0, undefined, started)
    const end = await this.#turn(id, timeout, signal)
    try {
      return await this.#acquireNow(id, data, timeout, signal, started)
    } finally {
      end()
    }
  }

  /**
   * Waits for this wait's turn among the waits of this process for the
   * lock, in the order they were asked, as the waits for a local lock queue
   * (core/waiter.ts): only the first waits on the server. The server serves
   * the waits it sees first come, first served, but two of one process, each
   * on a connection of its own, could reach it in either order. Resolves
   * with the end of the turn, which hands it to the next; rejects as the
   * wait gives up in the queue, as it would on the server.
   */
  async #turn(id: Identity, timeout: number | undefined, signal: AbortSignal | undefined): Promise<() => void> {
    const lock = this.#path(id)
    const me = { go: () => {} }
    const end = (): void => {
      const q = turns.get(lock)!
      const i = q.indexOf(me)
      q.splice(i, 1)
      if (q.length === 0) turns.delete(lock)
      // The first one's turn ends: the next one's begins.
      else if (i === 0) q[0]!.go()
    }
    const q = turns.get(lock)
    if (q === undefined) {
      turns.set(lock, [me])
      return end
    }
    q.push(me)
    const outcome = await firstOf((done) => (me.go = done), timeout, signal)
    if (outcome === 'done') return end
    // Given up: out of the queue, and the turn passed on if it had just come.
    end()
    if (outcome === 'abort') throw abortError(signal!)
    throw await this.#lockedError(id)
  }

  /** One try, then (`timeout` not 0) the wait on the server, on a session of its own. */
  async #acquireNow(id: Identity, data: string | undefined, timeout: number | undefined, signal: AbortSignal | undefined, started: number): Promise<PostgresLock> {
    const loc = this.#location(id)
    const s = await this.#take()
    let fence: string | null
    // The record goes with the try where it can be written: one round trip.
    let acquiredAt = new Date()
    let written: boolean
    try {
      const record = (await this.#records.writable(s)) ? this.#holding.record(loc, data, acquiredAt.getTime(), process.pid, false) : undefined
      const rows =
        record === undefined
          ? await s.query<{ fence: string | null }>(TRY, [id.lockId, s.pid], true, 'il_try')
          : await s.query<{ fence: string | null; written: number }>(this.#records.tryAndWrite(TRY), [id.lockId, s.pid, id.name, id.key ?? null, record], true, 'il_try_write')
      if (rows.length === 0) throw poolerError(this.#settings)
      fence = rows[0]!.fence
      written = fence !== null && record !== undefined
    } catch (e) {
      s.destroy()
      throw dropped(this.#settings, id, e)
    }
    if (fence === null) {
      // The time to connect and try counts against the timeout; an abort meanwhile ends it here.
      const left = timeout === undefined ? undefined : Math.max(0, timeout - (Date.now() - started))
      if (left === 0 || signal?.aborted === true) {
        this.#give(s)
        if (left !== 0) throw abortError(signal!)
        throw await this.#lockedError(id)
      }
      fence = await this.#wait(s, id, left, signal)
      acquiredAt = new Date()
    }
    return this.#hold(s, loc, data, BigInt(fence), acquiredAt, written)
  }

  /** The blocking wait on the server: resolves the fence, or rejects having let go of everything. */
  async #wait(s: Session, id: Identity, timeout: number | undefined, signal: AbortSignal | undefined): Promise<string> {
    const outcome = s.query<{ fence: string }>(WAIT, [id.lockId, s.pid], true, 'il_wait').then(
      (rows) => ({ rows, err: undefined }),
      (err: unknown) => ({ rows: undefined, err }),
    )
    const first = await firstOf((done) => void outcome.then(done), timeout, signal)
    if (first === 'done') {
      const { rows, err } = await outcome
      if (err !== undefined || rows === undefined) {
        s.destroy()
        throw dropped(this.#settings, id, err)
      }
      if (rows.length === 0) {
        s.destroy()
        throw poolerError(this.#settings)
      }
      return rows[0]!.fence
    }

    // The caller gave up: end the wait on the server, and let go of the lock
    // if the server granted it meanwhile (it may have, just as we cancelled).
    await this.#cancel(s, outcome)
    if (!s.dead) {
      try {
        await s.query('SELECT pg_advisory_unlock_all()')
        this.#give(s)
      } catch {
        s.destroy()
      }
    }
    if (first === 'abort') throw abortError(signal!)
    throw await this.#lockedError(id)
  }

  /**
   * Cancels the session's running statement from another session until it
   * returns. A cancel that arrives before the statement has started is
   * ignored by the server, hence the repetition. Bounded by the connect
   * timeout: a server we cannot reach gets the connection closed instead.
   */
  async #cancel(s: Session, outcome: Promise<unknown>): Promise<void> {
    let done = false
    void outcome.then(() => (done = true))
    const deadline = Date.now() + this.#settings.connectTimeout
    while (!done && !s.dead) {
      if (Date.now() > deadline) {
        s.destroy()
        break
      }
      try {
        await this.#with((c) => c.query('SELECT pg_cancel_backend($1)', [s.pid]))
      } catch {
        s.destroy()
        break
      }
      await Promise.race([outcome, new Promise((r) => setTimeout(r, 100))])
    }
    await outcome
  }

  async #hold(s: Session, loc: ServerLocation, data: string | undefined, fence: bigint, acquiredAt: Date, written: boolean): Promise<PostgresLock> {
    try {
      if (!written) await this.#records.write(s, loc.lockId, loc.name, loc.key, this.#holding.record(loc, data, acquiredAt.getTime(), process.pid, false))
      // The channel `stop` asks a holder on: named after the session, so that
      // only the session holding the lock hears it, and listened on for the
      // session's life (the request names the lock: see lock.ts).
      if (!s.listening) {
        // A new session's first acquisition is checked once more for a pooler
        // that sent the acquiring statement to our server process by chance:
        // the statement right after it must reach it too. Later, the heartbeat checks.
        const [r] = await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        if (r?.pid !== s.pid) throw poolerError(this.#settings)
        await s.query(`LISTEN instance_lock_${s.pid}`)
        s.listening = true
      }
    } catch (e) {
      s.destroy()
      throw dropped(this.#settings, loc, e)
    }
    return heldLock(this.#holding, loc, s, acquiredAt, data, fence)
  }

  #path(id: Identity): string {
    return `${this.#settings.where}#advisory=${id.lockId}`
  }

  #location(id: Identity): ServerLocation {
    const path = this.#path(id)
    return { name: id.name, key: id.key, scope: 'cluster', path, id: path, lockId: id.lockId }
  }

  async #lockedError(id: Identity): Promise<LockedError> {
    let found: Found | undefined
    try {
      found = await this.#with((s) => this.#records.find(s, id.lockId, id.name, id.key))
    } catch {
      // Who holds it is information only; the answer stands without it.
    }
    return lockedError(id, found)
  }

  // ---- looking ----

  async inspect(name: string, options?: { key?: string }): Promise<ClusterLockStatus> {
    const id = identity(name, options)
    const found = await this.#with((s) => this.#records.find(s, id.lockId, id.name, id.key))
    return this.#status(id, found)
  }

  #status(id: Identity, found: Found): ClusterLockStatus {
    const st: ClusterLockStatus = { name: id.name, scope: 'cluster', locked: found.backendPid !== undefined, path: this.#path(id) }
    if (id.key !== undefined) st.key = id.key
    if (found.holder !== undefined) st.holder = found.holder
    return st
  }

  async list(): Promise<ClusterLockStatus[]> {
    const all = await this.#with((s) => this.#records.all(s))
    return all.filter((f) => advisoryKey(f.name, f.key) === f.lockId).map((f) => this.#status({ name: f.name, key: f.key, lockId: f.lockId }, f))
  }

  // ---- stopping ----

  async stop(name: string, options?: ClusterStopOptions): Promise<ClusterStopResult> {
    const id = identity(name, options)
    const timeout = checkTimeout(id.o.timeout) ?? STOP_TIMEOUT
    const force = checkBoolean(id.o.force, 'force') ?? false
    return this.#with((s) => this.#stop(s, id, timeout, force))
  }

  async #stop(s: Session, id: Identity, timeout: number, force: boolean): Promise<ClusterStopResult> {
    const found = await this.#records.find(s, id.lockId, id.name, id.key)
    const backendPid = found.backendPid
    if (backendPid === undefined) return { stopped: true, forced: false }
    const result: ClusterStopResult = { stopped: false, forced: false }
    if (found.holder !== undefined) {
      result.pid = found.holder.pid
      result.hostname = found.holder.hostname
      result.holder = found.holder
    }
    // A lock whose holder's record names another identity is not ours to stop.
    if (found.foreign === 'collision') return result
    // Heard only by the session holding the lock now (see lock.ts).
    await s.query('SELECT pg_notify($1, $2)', [`instance_lock_${backendPid}`, `stop ${id.lockId}`])
    if (await this.#gone(s, id, backendPid, timeout)) return { ...result, stopped: true }
    // Without the record table no holder can be told from another application
    // using the key (a 2^-64 chance); with it, a holder that wrote no record is not ours.
    if (!force || (found.foreign === 'unknown' && found.records)) return result
    // Verified again just before: only a session that holds the lock right now is ended.
    await s.query(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.pid = $2 AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [id.lockId, backendPid],
    )
    result.forced = true
    result.stopped = await this.#gone(s, id, backendPid, Math.max(timeout, 5000))
    return result
  }

  /** Whether the session `backendPid` lets go of the lock within `timeout` ms. */
  async #gone(s: Session, id: Identity, backendPid: number, timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout
    for (;;) {
      const f = await this.#records.find(s, id.lockId, id.name, id.key)
      if (f.backendPid !== backendPid) return true
      if (Date.now() >= deadline) return false
      await new Promise((r) => setTimeout(r, STOP_POLL_MS))
    }
  }

  // ---- the guard ----

  async singleInstance(name: string, options?: ClusterGuardOptions): Promise<PostgresLock> {
    const id = identity(name, options)
    const onLocked = checkOnLocked(id.o.onLocked, ['exit', 'throw', 'replace'])
    const exitCode = checkExitCode(id.o.exitCode)
    const timeout = checkTimeout(id.o.timeout) ?? STOP_TIMEOUT
    const opts = { key: id.key, data: id.o.data } as ClusterLockOptions
    let lock: PostgresLock
    if (onLocked === 'replace') {
      try {
        lock = await this.tryLock(id.name, opts)
      } catch (e) {
        if (!(e instanceof LockedError)) throw e
        await this.stop(id.name, { ...(id.key === undefined ? {} : { key: id.key }), timeout, force: true })
        lock = await this.lock(id.name, { ...opts, timeout })
      }
    } else {
      try {
        lock = await this.tryLock(id.name, opts)
      } catch (e) {
        if (!(e instanceof LockedError) || onLocked === 'throw') throw e
        process.stderr.write(conflictMessage({ ...id, scope: 'cluster' }, e.holder, undefined, this.#settings.url))
        process.exit(exitCode)
      }
    }
    lock.signal.addEventListener('abort', () => {
      process.stderr.write(`instance-lock: ${(lock.signal.reason as Error).message}\n`)
      process.exit(1)
    })
    return lock
  }

  async close(): Promise<void> {
    await Promise.all(this.#releases)
    const idle = this.#idle
    this.#idle = []
    await Promise.all(
      idle.map((e) => {
        clearTimeout(e.timer)
        return e.s.end()
      }),
    )
  }
}

function lockedError(id: Identity, found: Found | undefined): LockedError {
  const what = describe(id)
  const h = found?.holder
  if (h !== undefined) return new LockedError(`${what} is held by pid ${h.pid} on ${h.hostname} (since ${h.startedAt})`, h)
  if (found?.foreign === 'collision') {
    return new LockedError(`${what} is held under another name: its advisory lock key is taken by a holder whose record names another lock (a hash collision)`)
  }
  if (found?.foreign === 'unknown' && found.records) {
    return new LockedError(`${what} is held by server process ${found.backendPid}, which wrote no record of this lock: another application may use the same advisory lock key`)
  }
  return new LockedError(`${what} is held by another session${found?.backendPid === undefined ? '' : ` (server process ${found.backendPid})`}`)
}

/**
 * Locks on a PostgreSQL database, held as session advisory locks: the server
 * frees a lock when its holder's session ends, however the holder died.
 * Nothing connects until a function is called.
 *
 * @example
 * const locks = postgres({ connectionString: process.env.DATABASE_URL })
 * const lock = await locks.tryLock('nightly-report')
 */
export function postgres(config: string | import('./config.js').PostgresConfig): PostgresLocks {
  return new Locks(checkConfig(config))
}
