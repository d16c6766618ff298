import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, inject } from 'vitest'
import type { TestServer } from './server.js'

export const servers: TestServer[] = inject('pgServers')

const HOLDER = join(__dirname, 'fixtures', 'holder.cjs')

/** A lock name no other test uses. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`
}

/** A plain connection for the test's own looking: pg_locks, pg_stat_activity. */
export async function admin(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'instance-lock-test-admin' })
  c.on('error', () => {})
  await c.connect()
  return c
}

/** The sessions a given application_name has open. */
export async function sessions(c: pg.Client, app: string): Promise<number> {
  const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app])
  return Number(r.rows[0]!.n)
}

/** Polls `f` until it is true, every 20 ms, at most `ms`: for server-side state that has no event. */
export async function until(f: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await f()) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 20))
  }
}

export interface Reply {
  ok?: boolean
  fence?: string
  code?: string
  holder?: { pid: number; hostname: string }
  [k: string]: unknown
}

/**
 * A holder process ("a host"): its own connection, driven over IPC. Every
 * request gets one reply; events (lost) come as { event }.
 */
export class Host {
  readonly child: ChildProcess
  readonly events: { event: string; code?: string; at: number }[] = []
  #waiting = new Map<number, (r: Reply) => void>()
  #eventWaiters: (() => void)[] = []
  #next = 0
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(url: string, options: Record<string, unknown> = {}) {
    this.child = fork(HOLDER, [JSON.stringify({ url, options })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: { id?: number; event?: string }) => {
      if (m.event !== undefined) {
        this.events.push({ ...(m as { event: string }), at: Date.now() })
        for (const w of this.#eventWaiters.splice(0)) w()
      } else this.#waiting.get(m.id!)?.(m)
    })
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  ask(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#next++
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (r) => {
        this.#waiting.delete(id)
        resolve(r)
      })
      void this.exited.then(({ code, signal }) => reject(new Error(`host exited (${code ?? signal}) before replying to ${op}`)))
      this.child.send({ id, op, ...args }, (err) => {
        if (err) reject(err)
      })
    })
  }

  /** Resolves with the first event named `name` (already seen or yet to come). */
  async event(name: string): Promise<{ event: string; code?: string; at: number }> {
    for (;;) {
      const e = this.events.find((x) => x.event === name)
      if (e !== undefined) return e
      await new Promise<void>((r) => this.#eventWaiters.push(r))
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
  }
}

/**
 * For one describe block on `url`: an admin connection (`db.c`), and the
 * hosts it starts (`db.started`), killed when the block ends.
 */
export function adminOf(url: string): { c: pg.Client; started: Host[] } {
  const db = { c: undefined as unknown as pg.Client, started: [] as Host[] }
  beforeAll(async () => {
    db.c = await admin(url)
  })
  afterAll(async () => {
    for (const h of db.started) h.kill()
    await db.c.end()
  })
  return db
}
