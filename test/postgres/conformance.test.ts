import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgres, type PostgresLock } from 'instance-lock/postgres'
import { admin, Host, servers, uniqueName, until } from './helpers.js'

// The conformance scenarios of test/conformance/scenarios.mjs that apply to
// a cluster lock, on this backend. Those scenarios are written for the local
// API (synchronous tryLock, lock files, the addon) and its harness; the ones
// that carry over are here, or already in the files beside this one:
// exclusion in one process and between processes, holder naming, wait,
// timeout, abort and handoff (locks.test.ts), crash release and stop
// (multiprocess.test.ts), lost (lost.test.ts), bad input (locks.test.ts).

describe.each(servers)('conformance on PostgreSQL ($name server)', (server) => {
  let c: pg.Client
  beforeAll(async () => {
    c = await admin(server.url)
  })
  afterAll(async () => {
    await c.end()
  })

  async function waiting(path: string): Promise<number> {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
      [path.split('#advisory=')[1]],
    )
    return r.rows[0]!.n
  }

  it('waiters get the lock in the order they asked, past those that gave up', async () => {
    const name = uniqueName('fifo')
    const locks = postgres(server.url)
    try {
      const first = await locks.tryLock(name)
      const order: string[] = []
      const pending: Promise<void>[] = []
      const quitter = new AbortController()
      for (const w of ['a', 'b', 'quitter', 'c']) {
        const before = await waiting(first.path)
        const p = locks.lock(name, w === 'quitter' ? { signal: quitter.signal } : {}).then(
          async (l: PostgresLock) => {
            order.push(w)
            await l[Symbol.asyncDispose]()
          },
          () => void order.push(`${w} gave up`),
        )
        pending.push(p)
        // The next waiter asks only once this one waits on the server.
        expect(await until(async () => (await waiting(first.path)) > before, 10_000)).toBe(true)
      }
      quitter.abort()
      await pending[2]
      await first[Symbol.asyncDispose]()
      await Promise.all(pending)
      expect(order).toEqual(['quitter gave up', 'a', 'b', 'c'])
    } finally {
      await locks.close()
    }
  })

  it('inspect takes nothing: it never makes a concurrent tryLock fail', async () => {
    const name = uniqueName('inspect')
    const looker = postgres(server.url)
    const taker = postgres(server.url)
    try {
      let looking = true
      const looks = (async () => {
        let n = 0
        while (looking) {
          await looker.inspect(name)
          n++
        }
        return n
      })()
      for (let i = 0; i < 30; i++) await (await taker.tryLock(name))[Symbol.asyncDispose]()
      looking = false
      expect(await looks).toBeGreaterThan(0)
    } finally {
      await looker.close()
      await taker.close()
    }
  })

  it('the record round trip: data, update and ready as another process sees them; release does not abort signal', async () => {
    const name = uniqueName('record')
    const locks = postgres(server.url)
    const other = new Host(server.url)
    try {
      await other.event('ready')
      const l = await locks.tryLock(name, { key: 'k', data: { port: 1 } })
      expect(l.holder).toMatchObject({ pid: process.pid, name, key: 'k', scope: 'cluster', data: { port: 1 } })
      const seen = async (): Promise<Record<string, unknown>> =>
        ((await other.ask('inspect', { name, options: { key: 'k' } })).status as { holder: Record<string, unknown> }).holder
      expect(await seen()).toMatchObject({ pid: process.pid, startedAt: l.acquiredAt.toISOString(), data: { port: 1 } })
      expect((await seen()).ready).toBeUndefined()
      l.update({ port: 2 })
      expect(await until(async () => ((await seen()).data as { port: number }).port === 2, 5000)).toBe(true)
      l.ready({ port: 3 })
      expect(await until(async () => (await seen()).ready === true, 5000)).toBe(true)
      expect((await seen()).data).toEqual({ port: 3 })
      const signal = l.signal
      await l[Symbol.asyncDispose]()
      expect(signal.aborted).toBe(false)
      expect(() => l.update({})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
      const st = (await other.ask('inspect', { name, options: { key: 'k' } })).status as { locked: boolean; holder?: unknown }
      expect(st.locked).toBe(false)
      expect(st.holder).toBeUndefined()
    } finally {
      other.kill()
      await locks.close()
    }
  })
})
