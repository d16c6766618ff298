import type { Socket } from 'node:net'
import type { Client, Notification } from 'pg'
import type { Settings } from './config.js'

type Pg = typeof import('pg')
let pg: Pg | undefined

/** node-postgres, an optional peer dependency: loaded on first use, never by the main entry. */
function loadPg(): Pg {
  if (pg === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      pg = require('pg') as Pg
    } catch (cause) {
      const err = new Error('instance-lock/postgres needs the pg package: npm install pg', { cause }) as Error & { code: string }
      err.code = 'ERR_MODULE_NOT_FOUND'
      throw err
    }
  }
  return pg
}

export interface CodedError extends Error {
  code: string
}

export function coded(message: string, code: string, cause?: unknown): CodedError {
  const err = (cause === undefined ? new Error(message) : new Error(message, { cause })) as CodedError
  err.code = code
  return err
}

/**
 * The server-side settings of every session: no statement or lock timeout
 * of the database's defaults may cut a wait short, no idle timeout may end a
 * holder's session, and the server's own detection of a dead client (TCP
 * keepalive, TCP_USER_TIMEOUT) takes `serverTimeout(lostAfter)`: longer than
 * the holder needs to learn it is cut off, so the holder is told first.
 * Settings the server does not know (older versions) are skipped. And the
 * fence (a transaction id) must be durable before it is handed out: with
 * `synchronous_commit = off` a server crash could hand the same id out again,
 * so such a session commits locally at least.
 */
const SETUP = `SELECT pg_backend_pid() AS pid, count(set_config(s.name, s.value, false)) AS n,
  CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'local', false) END AS sync
FROM (VALUES ('statement_timeout', '0'), ('lock_timeout', '0'), ('idle_session_timeout', '0'),
  ('idle_in_transaction_session_timeout', '0'), ('tcp_keepalives_idle', $1), ('tcp_keepalives_interval', '1'),
  ('tcp_keepalives_count', '3'), ('tcp_user_timeout', $2)) s(name, value)
WHERE s.name IN (SELECT name FROM pg_settings)`

/** When the server gives up on a silent client, in ms: twice `lostAfter`, plus a second. */
function serverTimeout(lostAfter: number): number {
  return 2 * lostAfter + 1000
}

/**
 * One connection, to one server process (`pid`). Its socket keeps the
 * process alive only while a caller awaits something of it: a held lock, or
 * an idle session, never does (the local locks do not either).
 */
export class Session {
  readonly client: Client
  /** The server process of this session: pg_backend_pid(). */
  pid = 0
  dead = false
  /** LISTENs on its stop channel (see locks.ts). */
  listening = false
  #refs = 0
  #onDeath = new Set<(err: Error) => void>()
  onNotification: ((n: Notification) => void) | undefined

  private constructor(client: Client) {
    this.client = client
    client.on('error', (e) => this.#die(e))
    client.on('end', () => this.#die(new Error('the connection to the server was closed')))
    client.on('notification', (n) => this.onNotification?.(n))
  }

  /** Connects and sets the session up; on any failure nothing stays open. */
  static async open(settings: Settings): Promise<Session> {
    const { Client } = loadPg()
    const s = new Session(new Client(settings.client))
    s.#refs++
    try {
      await s.client.connect()
      const timeout = serverTimeout(settings.lostAfter)
      const idle = Math.max(1, Math.ceil(timeout / 1000) - 3)
      const r = await s.client.query<{ pid: number }>(SETUP, [String(idle), String(timeout)])
      s.pid = r.rows[0]!.pid
    } catch (e) {
      s.destroy()
      throw connectError(settings, e)
    } finally {
      s.#release()
    }
    return s
  }

  /**
   * Runs one statement. `hold`: the process stays alive until it answers.
   * `name`: prepared once per session under that name (the statements of
   * every acquisition and release), so the server parses and plans it once.
   */
  async query<R extends object>(text: string, values?: unknown[], hold = true, name?: string): Promise<R[]> {
    if (hold) this.#hold()
    try {
      return (await this.client.query<R>(name === undefined ? { text, ...(values === undefined ? {} : { values }) } : { name, text, values: values ?? [] })).rows
    } finally {
      if (hold) this.#release()
    }
  }

  onDeath(f: (err: Error) => void): () => void {
    this.#onDeath.add(f)
    return () => this.#onDeath.delete(f)
  }

  /** Ends the session politely (the server releases its locks as it ends). */
  async end(): Promise<void> {
    this.dead = true
    // Awaited: the socket keeps the process alive until the server has it.
    this.#stream()?.ref()
    try {
      await this.client.end()
    } catch {
      // Already gone: nothing is left to close.
    }
  }

  /** Drops the connection at once, without waiting for the server. */
  destroy(): void {
    this.dead = true
    const stream = this.#stream()
    stream?.destroy()
    this.client.end().catch(() => {})
  }

  #die(err: Error): void {
    if (this.#onDeath.size === 0 && this.dead) return
    this.dead = true
    for (const f of [...this.#onDeath]) f(err)
    this.#onDeath.clear()
    this.#stream()?.destroy()
  }

  #stream(): Socket | undefined {
    return (this.client as unknown as { connection?: { stream?: Socket } }).connection?.stream
  }

  #hold(): void {
    if (this.#refs++ === 0) this.#stream()?.ref()
  }

  #release(): void {
    if (--this.#refs === 0) this.#stream()?.unref()
  }
}

/** A failed connection, said with where and why; the cause's code is kept. */
function connectError(settings: Settings, e: unknown): CodedError {
  const cause = e as { code?: unknown; message?: unknown }
  const why = typeof cause?.message === 'string' ? cause.message : String(e)
  let code = typeof cause?.code === 'string' ? cause.code : 'ECONNECTION'
  if (why === 'timeout expired' || why.includes('timeout exceeded')) code = 'ETIMEDOUT'
  const hint = code === 'ETIMEDOUT' ? ` (no answer within ${settings.connectTimeout} ms)` : ''
  return coded(`Could not connect to PostgreSQL at ${settings.where}: ${why}${hint}`, code, e)
}
