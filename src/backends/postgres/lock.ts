import { hostname } from 'node:os'
import { describeLock, serverLock, type HeldAt, type Holding, type Lock } from '../../core/lock.js'
import { makeRecord } from '../../core/record.js'
import { coded, type Session } from './session.js'
import type { ClusterHolder } from './types.js'

/**
 * A lock held on a PostgreSQL server: the shared `Lock` (core/lock.ts), with
 * `scope` 'cluster', a `ClusterHolder`, and `fence`; no messages. Its
 * `release()` lets go at once, and the server frees the lock a round trip
 * later: `await lock[Symbol.asyncDispose]()` waits for that.
 */
export type PostgresLock = Omit<Lock, 'scope' | 'holder' | 'fence' | 'update' | 'ready' | 'onMessage' | 'recovered' | 'clusterPrimary'> & {
  readonly scope: 'cluster'
  /**
   * Replaces the holder's `data` in the record, as shown to `inspect()`,
   * `list()` and `instance-lock status`. Resolves once the record is on the
   * server (never rejects: a session that fails the write is a lost lock,
   * which `signal` reports).
   */
  update(data: Record<string, unknown>): Promise<void>
  /** Marks the holder ready (replacing its `data` when given), as `update()` does. Idempotent. */
  ready(data?: Record<string, unknown>): Promise<void>
  /** What this process recorded as holder, and its session's server process. */
  readonly holder: ClusterHolder
  /**
   * Fencing token: a transaction id the server assigned while this holder
   * held the lock, so strictly greater than the fence of every earlier
   * holder of the lock (of any lock of the server, in fact). Pass it with
   * every write the lock protects, and have the store refuse a write whose
   * fence is lower than one it has seen.
   */
  readonly fence: bigint
}

/** @internal Where a PostgreSQL lock is: `path` is the server and the advisory lock key. */
export type ServerLocation = HeldAt & { scope: 'cluster'; lockId: string }

/** @internal What a held lock needs of the `postgres()` object that made it. */
export interface Owner {
  readonly lostAfter: number
  /** Writes the holder record; resolves false where there is no record table. */
  writeRecord(s: Session, lockId: string, name: string, key: string | undefined, record: string): Promise<unknown>
  /** Lets go of the lock and gives the session back (or ends it). */
  giveBack(s: Session): Promise<void>
}

/** @internal The backend's handle on a held lock: its session, which holds it. */
export interface Held {
  session: Session
  /** The session ended or became unreachable: nothing to let go of. */
  lost: boolean
}

/**
 * @internal What a `Lock` held on PostgreSQL asks of its backend. The session
 * is watched while held: a heartbeat every `lostAfter / 5` ms, and the lock
 * counts as lost (`signal` aborts with `ELOCKLOST`) when no heartbeat sent
 * in the last `0.8 × lostAfter` ms has been answered, when the connection
 * closes, or when the heartbeat is answered by another server process than
 * the one holding the lock (a pooler moved the connection).
 */
export function holding(owner: Owner): Holding<ServerLocation, Held> {
  const host = hostname()
  return {
    record: (loc, data, at, pid, ready) => makeRecord(host, loc, data, at, pid, ready),
    // Queued on the session behind any heartbeat; a session that fails it
    // is lost, and says so through `signal`. Resolves once written or failed.
    update: (loc, h, record) =>
      owner.writeRecord(h.session, loc.lockId, loc.name, loc.key, record).then(
        () => {},
        () => {},
      ),
    release: (_loc, h) => (h.lost ? Promise.resolve() : owner.giveBack(h.session)),
    watch: (loc, h, lose) => watch(owner.lostAfter, loc, h, lose),
    holderFields: (h) => ({ backendPid: h.session.pid }),
  }
}

/** @internal The Lock for a lock just acquired on `session`. */
export function heldLock(owner: Holding<ServerLocation, Held>, loc: ServerLocation, session: Session, acquiredAt: Date, data: string | undefined, fence: bigint): PostgresLock {
  return serverLock(owner, loc, { session, lost: false }, acquiredAt, data, fence) as unknown as PostgresLock
}

function watch(lostAfter: number, loc: ServerLocation, h: Held, lose: (err: Error) => void): () => void {
  const s = h.session
  let watching = true
  let lastOk = Date.now()
  let inFlight = false
  const every = lostAfter / 5

  const lost = (cause: Error): void => {
    if (!watching) return
    stop()
    h.lost = true
    s.destroy()
    const err = coded(`${describeLock(loc)} was lost: its PostgreSQL session ended or became unreachable (${cause.message}); another process may hold it now`, 'ELOCKLOST', cause)
    ;(err as { path?: string }).path = loc.path
    lose(err)
  }

  const beat = (): void => {
    if (Date.now() - lastOk > lostAfter - every) return lost(new Error(`no answer from the server for ${Date.now() - lastOk} ms`))
    if (inFlight) return
    inFlight = true
    const sent = Date.now()
    s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid', undefined, false, 'il_beat').then(
      (rows) => {
        inFlight = false
        if (rows[0]?.pid !== s.pid) lost(new Error(`the connection now reaches server process ${rows[0]?.pid}, not ${s.pid}: a transaction-mode pooler is in between`))
        else lastOk = Math.max(lastOk, sent)
      },
      (err: Error) => {
        inFlight = false
        lost(err)
      },
    )
  }

  const unwatchDeath = s.onDeath(lost)
  // Only our own session listens on this channel (see locks.ts), and the
  // request names the lock: one for a lock this session held before is not
  // for this one. The verified holder exits as stop() would signal it.
  s.onNotification = (n) => {
    if (watching && n.channel === `instance_lock_${s.pid}` && n.payload === `stop ${loc.lockId}`) process.kill(process.pid, 'SIGTERM')
  }
  const heartbeat = setInterval(beat, every).unref()

  function stop(): void {
    watching = false
    clearInterval(heartbeat)
    unwatchDeath()
    s.onNotification = undefined
  }
  return stop
}
