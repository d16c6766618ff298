import { parseRecord } from '../../core/record.js'
import type { Session } from './session.js'
import type { ClusterHolder } from './types.js'

/** What the server says of one lock, and what its holder recorded. */
export interface Found {
  /** The server process whose session holds the lock now: pg_locks is the proof. */
  backendPid?: number
  /** That session's record, when it names this lock. */
  holder?: ClusterHolder
  /** Held, with a record of another lock (a hash collision), or none at all (another application, or no record table). */
  foreign?: 'collision' | 'unknown'
  /** Whether the record table could be read. */
  records: boolean
}

export interface FoundLock extends Found {
  lockId: string
  name: string
  key: string | undefined
}

interface Access {
  read: boolean
  write: boolean
}

/** The advisory lock `$1` (bigint) of this database, granted. */
const HELD = `l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`
const KEY = `((l.classid::int8 << 32) | l.objid::int8)`

// Privilege errors, a missing schema, a read-only server: no table, and
// locks work on without records.
const NO_TABLE = new Set(['42501', '3F000', '25006'])
// Another process created it at the same moment.
const RACED = new Set(['42P07', '23505'])

/**
 * The holder record table, `<schema>.instance_lock_holders`: one row per
 * lock ever taken (by advisory key), naming its identity, the server process
 * of the session that holds or last held it, and the holder's record. It is
 * created on first use; without the privilege to create it (or to write
 * it), locks, fences, `signal` and `stop` work on and holders are not named.
 */
export class Records {
  #table: string
  #access: Promise<Access> | undefined

  constructor(schema: string) {
    this.#table = `"${schema}".instance_lock_holders`
  }

  #ensure(s: Session): Promise<Access> {
    this.#access ??= this.#check(s).catch((e: unknown) => {
      this.#access = undefined
      throw e
    })
    return this.#access
  }

  async #check(s: Session): Promise<Access> {
    try {
      return await this.#create(s)
    } catch (e) {
      if (NO_TABLE.has((e as { code?: string }).code ?? '')) return { read: false, write: false }
      throw e
    }
  }

  async #create(s: Session): Promise<Access> {
    for (let attempt = 0; ; attempt++) {
      const [r] = await s.query<{ present: boolean; read: boolean; write: boolean }>(
        `SELECT t IS NOT NULL AS present,
           t IS NOT NULL AND has_table_privilege(t, 'SELECT') AS read,
           t IS NOT NULL AND has_table_privilege(t, 'INSERT') AND has_table_privilege(t, 'UPDATE') AS write
         FROM to_regclass($1) t`,
        [this.#table],
      )
      if (r!.present) return { read: r!.read, write: r!.write }
      try {
        await s.query(
          `CREATE TABLE IF NOT EXISTS ${this.#table} (
             lock_id bigint PRIMARY KEY,
             name text NOT NULL,
             key text,
             backend_pid integer NOT NULL,
             record text NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now())`,
        )
        return { read: true, write: true }
      } catch (e) {
        if (!RACED.has((e as { code?: string }).code ?? '') || attempt > 0) throw e
      }
    }
  }

  /** Whether this holder's record can be written. */
  async writable(s: Session): Promise<boolean> {
    return (await this.#ensure(s)).write
  }

  /**
   * `tryLock`'s statement with the record written in it, when it was taken:
   * one round trip. $1 lock id, $2 the session's server process, $3 name,
   * $4 key, $5 record. No row: the statement ran in another server process
   * (see locks.ts); `fence` null: held elsewhere.
   */
  tryAndWrite(acquire: string): string {
    return `WITH l AS MATERIALIZED (${acquire}),
      w AS (INSERT INTO ${this.#table} (lock_id, name, key, backend_pid, record)
        SELECT $1::int8, $3, $4, $2, $5 FROM l WHERE l.fence IS NOT NULL
        ON CONFLICT (lock_id) DO UPDATE SET name = EXCLUDED.name, key = EXCLUDED.key, backend_pid = EXCLUDED.backend_pid,
          record = EXCLUDED.record, updated_at = now()
        RETURNING 1)
      SELECT l.fence, (SELECT count(*) FROM w)::int AS written FROM l`
  }

  /** Writes this holder's record; false where it cannot be written. */
  async write(s: Session, lockId: string, name: string, key: string | undefined, record: string): Promise<boolean> {
    if (!(await this.#ensure(s)).write) return false
    await s.query(
      `INSERT INTO ${this.#table} (lock_id, name, key, backend_pid, record) VALUES ($1::int8, $2, $3, $4, $5)
       ON CONFLICT (lock_id) DO UPDATE SET name = EXCLUDED.name, key = EXCLUDED.key, backend_pid = EXCLUDED.backend_pid,
         record = EXCLUDED.record, updated_at = now()`,
      [lockId, name, key ?? null, s.pid, record],
    )
    return true
  }

  /** Who holds the lock `lockId` (of identity name, key) now. Takes nothing. */
  async find(s: Session, lockId: string, name: string, key: string | undefined): Promise<Found> {
    const { read } = await this.#ensure(s)
    const rows = await s.query<{ backend_pid: number; name?: string | null; key?: string | null; record?: string | null }>(
      read
        ? `SELECT l.pid AS backend_pid, r.name, r.key, r.record FROM pg_locks l
           LEFT JOIN ${this.#table} r ON r.lock_id = $1::int8 AND r.backend_pid = l.pid
           WHERE ${HELD} AND ${KEY} = $1::int8 ORDER BY r.record IS NULL LIMIT 1`
        : `SELECT l.pid AS backend_pid FROM pg_locks l WHERE ${HELD} AND ${KEY} = $1::int8 LIMIT 1`,
      [lockId],
    )
    const row = rows[0]
    if (row === undefined) return { records: read }
    return classify(row.backend_pid, row.name, row.key, row.record, name, key, read)
  }

  /** Every lock with a record, held or not, sorted by name and key. */
  async all(s: Session): Promise<FoundLock[]> {
    if (!(await this.#ensure(s)).read) return []
    const rows = await s.query<{ lock_id: string; name: string; key: string | null; record: string; backend_pid: number; holder_pid: number | null }>(
      `SELECT r.lock_id::text AS lock_id, r.name, r.key, r.record, r.backend_pid, l.pid AS holder_pid
       FROM ${this.#table} r LEFT JOIN pg_locks l ON ${HELD} AND ${KEY} = r.lock_id
       ORDER BY r.name COLLATE "C", r.key COLLATE "C" NULLS FIRST`,
    )
    return rows.map((r) => {
      const key = r.key ?? undefined
      const found: Found =
        r.holder_pid === null
          ? { records: true }
          : classify(r.holder_pid, r.holder_pid === r.backend_pid ? r.name : null, key, r.holder_pid === r.backend_pid ? r.record : null, r.name, key, true)
      return { ...found, lockId: r.lock_id, name: r.name, key }
    })
  }
}

function classify(
  backendPid: number,
  rName: string | null | undefined,
  rKey: string | null | undefined,
  record: string | null | undefined,
  name: string,
  key: string | undefined,
  read: boolean,
): Found {
  const found: Found = { backendPid, records: read }
  if (typeof record !== 'string') {
    found.foreign = 'unknown'
    return found
  }
  if (rName !== name || (rKey ?? undefined) !== key) {
    found.foreign = 'collision'
    return found
  }
  const holder = parseHolder(record, name, key, backendPid)
  if (holder === undefined) found.foreign = 'unknown'
  else found.holder = holder
  return found
}

/** A record is information, not proof: shaped into a holder (core/record.ts) only if well-formed and naming this lock. */
function parseHolder(text: string, name: string, key: string | undefined, backendPid: number): ClusterHolder | undefined {
  const h = parseRecord(text, { name, scope: 'cluster' })
  if (h === undefined || h.key !== key) return undefined
  return { ...h, backendPid }
}
