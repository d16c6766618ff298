import { createServer, type Server } from 'node:net'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lock, LockedError as MainLockedError } from 'instance-lock'
import { LockedError, postgres } from 'instance-lock/postgres'
import { admin, Host, servers, sessions, uniqueName, until } from './helpers.js'
import { Proxy, target, via } from './proxy.js'

// One process: the API's behaviour on one server. The multi-process cases
// (race, crash, lost) are in multiprocess.test.ts and lost.test.ts.

function withApp(url: string, app: string): string {
  const u = new URL(url)
  u.searchParams.set('application_name', app)
  return u.href
}

/** Whether the server shows the lock of `lockPath` held by anyone. */
async function heldOnServer(c: pg.Client, path: string): Promise<boolean> {
  const key = path.split('#advisory=')[1]!
  const r = await c.query(
    `SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
    [key],
  )
  return r.rowCount! > 0
}

describe.each(servers)('postgres locks ($name server)', (server) => {
  let c: pg.Client
  beforeAll(async () => {
    c = await admin(server.url)
  })
  afterAll(async () => {
    await c.end()
  })

  it('excludes, records the holder, and hands the lock on with a greater fence', async () => {
    const name = uniqueName()
    const a = postgres(server.url)
    const b = postgres(server.url)
    try {
      const l1 = await a.tryLock(name, { key: 'eu-west', data: { port: 3000 } })
      // The Lock of the main entry, with what a PostgreSQL lock adds and without messages.
      expect(l1).toBeInstanceOf(Lock)
      expect(() => (l1 as unknown as Lock).onMessage(() => 1)).toThrow(expect.objectContaining({ code: 'ENOTSUP' }))
      expect(l1.holder).toMatchObject({ pid: process.pid, name, key: 'eu-west', scope: 'cluster', data: { port: 3000 } })
      expect(typeof l1.holder.backendPid).toBe('number')
      expect(l1.scope).toBe('cluster')
      expect(l1.key).toBe('eu-west')
      expect(typeof l1.fence).toBe('bigint')
      expect(await heldOnServer(c, l1.path)).toBe(true)

      const err = await b.tryLock(name, { key: 'eu-west' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(LockedError)
      expect(err).toBeInstanceOf(MainLockedError)
      expect((err as LockedError).code).toBe('ELOCKED')
      expect((err as LockedError).holder).toMatchObject({ pid: process.pid, name, key: 'eu-west', scope: 'cluster', data: { port: 3000 } })
      expect(typeof (err as LockedError).holder!.hostname).toBe('string')
      // A second acquisition in the same process is refused too.
      await expect(a.tryLock(name, { key: 'eu-west' })).rejects.toMatchObject({ code: 'ELOCKED' })
      // Another key is another lock.
      const other = await b.tryLock(name, { key: 'us-east' })
      other.release()

      const st = await b.inspect(name, { key: 'eu-west' })
      expect(st).toMatchObject({ name, key: 'eu-west', scope: 'cluster', locked: true, holder: { pid: process.pid, data: { port: 3000 } } })
      // Not awaited: written in call order on the lock's session all the same.
      void l1.update({ port: 3001 })
      void l1.ready()
      expect(await until(async () => (await b.inspect(name, { key: 'eu-west' })).holder?.ready === true, 5000)).toBe(true)
      expect((await b.inspect(name, { key: 'eu-west' })).holder!.data).toEqual({ port: 3001 })

      const waiting = b.lock(name, { key: 'eu-west' })
      await l1[Symbol.asyncDispose]()
      expect(l1.released).toBe(true)
      expect(l1.signal.aborted).toBe(false)
      const l2 = await waiting
      expect(l2.fence).toBeGreaterThan(l1.fence)
      await l2[Symbol.asyncDispose]()
      const free = await a.inspect(name, { key: 'eu-west' })
      expect(free.locked).toBe(false)
      expect(free.holder).toBeUndefined()
      expect(await heldOnServer(c, l2.path)).toBe(false)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('inspect takes nothing, and list shows held and free locks', async () => {
    const name = uniqueName('list')
    const a = postgres(server.url)
    try {
      const st = await a.inspect(name)
      expect(st).toMatchObject({ name, scope: 'cluster', locked: false })
      const l = await a.tryLock(name)
      const free = uniqueName('list')
      ;(await a.tryLock(free)).release()
      await until(async () => !(await a.inspect(free)).locked, 5000)
      const all = await a.list()
      expect(all.find((s) => s.name === name)).toMatchObject({ locked: true, holder: { pid: process.pid } })
      expect(all.find((s) => s.name === free)).toMatchObject({ locked: false })
      // inspect never made a try fail, nor took anything: the holder's lock is as it was.
      expect(await heldOnServer(c, l.path)).toBe(true)
      await l[Symbol.asyncDispose]()
    } finally {
      await a.close()
    }
  })

  it('a timed-out or aborted wait leaves nothing held and no session behind, even when granted as it gives up', async () => {
    const name = uniqueName('wait')
    const app = uniqueName('app')
    const holder = postgres(server.url)
    const waiter = postgres(withApp(server.url, app))
    try {
      const l = await holder.tryLock(name)
      const t0 = Date.now()
      await expect(waiter.lock(name, { timeout: 300 })).rejects.toMatchObject({ code: 'ELOCKED', holder: { pid: process.pid } })
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290)
      const ac = new AbortController()
      const aborted = waiter.lock(name, { signal: ac.signal })
      setTimeout(() => ac.abort(), 100)
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
      await expect(waiter.lock(name, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
      // Aborted while connecting, before the wait has begun on the server.
      const early = new AbortController()
      const fresh = postgres(withApp(server.url, app))
      const connecting = fresh.lock(name, { signal: early.signal })
      early.abort()
      await expect(connecting).rejects.toMatchObject({ name: 'AbortError' })
      await fresh.close()
      // The race: the holder lets go just as the waiter gives up, many times.
      for (let i = 0; i < 10; i++) {
        const w = waiter.lock(name, { timeout: 50 }).then(
          (got) => got.release(),
          () => {},
        )
        if (i % 2 === 0) l.release()
        await w
        if (i % 2 === 0) break
      }
      await l[Symbol.asyncDispose]()
      await waiter.close()
      // Nothing held by the waiter, and its sessions are all closed.
      expect(await heldOnServer(c, l.path)).toBe(false)
      expect(await until(async () => (await sessions(c, app)) === 0, 5000)).toBe(true)
    } finally {
      await holder.close()
      await waiter.close()
    }
  })

  it('waits of one process queue in it, whichever postgres() object made them; one that times out in the queue names the holder', async () => {
    const name = uniqueName('turns')
    const holder = postgres(server.url)
    const waiter = postgres(server.url)
    const other = postgres(server.url)
    try {
      const l = await holder.tryLock(name, { data: { role: 'holder' } })
      // Back to back, on two objects: each connects on its own, and either
      // could reach the server first.
      const first = waiter.lock(name)
      const second = other.lock(name, { timeout: 60_000 })
      const t0 = Date.now()
      await expect(waiter.lock(name, { timeout: 300 })).rejects.toMatchObject({ code: 'ELOCKED', holder: { pid: process.pid, data: { role: 'holder' } } })
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290)
      await l[Symbol.asyncDispose]()
      const winner = await Promise.race([first.then(() => 'first'), second.then(() => 'second')])
      expect(winner).toBe('first')
      const got = await first
      expect(got.fence).toBeGreaterThan(l.fence)
      await got[Symbol.asyncDispose]()
      const last = await second
      expect(last.fence).toBeGreaterThan(got.fence)
      await last[Symbol.asyncDispose]()
    } finally {
      await holder.close()
      await waiter.close()
      await other.close()
    }
  })

  it('update() and ready() resolve once the record is on the server', async () => {
    const name = uniqueName('record')
    const a = postgres(server.url)
    const b = postgres(server.url)
    try {
      const l = await a.tryLock(name, { data: { port: 1 } })
      const written = l.update({ port: 2 })
      expect(written).toBeInstanceOf(Promise)
      await written
      expect((await b.inspect(name)).holder).toMatchObject({ data: { port: 2 } })
      await l.ready({ port: 3 })
      expect((await b.inspect(name)).holder).toMatchObject({ data: { port: 3 }, ready: true })
      // Called again without data: already ready, the same promise.
      await l.ready()
      await l[Symbol.asyncDispose]()
      expect(() => l.update({})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('a wait cancelled while the lock is granted lets go of it', async () => {
    const name = uniqueName('grant')
    const a = postgres(server.url)
    const b = postgres(server.url)
    try {
      for (let i = 0; i < 20; i++) {
        const l = await a.tryLock(name)
        const ac = new AbortController()
        const w = b.lock(name, { signal: ac.signal })
        // Release and abort in the same tick: the grant and the cancel cross.
        await new Promise((r) => setTimeout(r, 5))
        const released = l[Symbol.asyncDispose]()
        ac.abort()
        const got = await w.catch(() => undefined)
        if (got !== undefined) await got[Symbol.asyncDispose]()
        await released
        // Whatever won, nothing stays held once the caller has its answer.
        expect(await heldOnServer(c, l.path)).toBe(false)
      }
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('bad input is refused before any connection is made', async () => {
    let connections = 0
    const srv: Server = createServer((s) => {
      connections++
      s.destroy()
    })
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as { port: number }).port
    try {
      const locks = postgres(`postgres://u:p@127.0.0.1:${port}/db`)
      const cases: [Promise<unknown>, string][] = [
        [locks.tryLock(''), 'ERR_INVALID_ARG_VALUE'],
        [locks.tryLock(42 as unknown as string), 'ERR_INVALID_ARG_TYPE'],
        [locks.tryLock('a/b'), 'ERR_INVALID_ARG_VALUE'],
        [locks.tryLock('x', { key: '' }), 'ERR_INVALID_ARG_VALUE'],
        [locks.tryLock('x', { key: 'a\0b' }), 'ERR_INVALID_ARG_VALUE'],
        [locks.tryLock('x', { data: [] as unknown as Record<string, unknown> }), 'ERR_INVALID_ARG_TYPE'],
        [locks.lock('x', { timeout: -1 }), 'ERR_OUT_OF_RANGE'],
        [locks.lock('x', { signal: {} as AbortSignal }), 'ERR_INVALID_ARG_TYPE'],
        [locks.inspect('..'), 'ERR_INVALID_ARG_VALUE'],
        [locks.stop('x', { force: 'yes' as unknown as boolean }), 'ERR_INVALID_ARG_TYPE'],
        [locks.singleInstance('x', { onLocked: 'kill' as 'exit' }), 'ERR_INVALID_ARG_VALUE'],
        // As the local guard's: one validator for both.
        [locks.singleInstance('x', { onLocked: 'forward' as 'exit' }), 'ERR_INVALID_ARG_VALUE'],
        [locks.singleInstance('x', { onLocked: 7 as unknown as 'exit' }), 'ERR_INVALID_ARG_TYPE'],
        [locks.singleInstance('x', { exitCode: 256 }), 'ERR_INVALID_ARG_TYPE'],
        [locks.singleInstance('x', { exitCode: -1 }), 'ERR_INVALID_ARG_TYPE'],
      ]
      for (const [p, code] of cases) await expect(p).rejects.toMatchObject({ code })
      expect(() => postgres(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
      expect(() => postgres('http://example.com/db')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
      expect(() => postgres('not a url')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
      expect(() => postgres({ connectionString: server.url, lostAfter: 10 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
      expect(() => postgres({ connectionString: server.url, schema: 'a;b' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
      expect(connections).toBe(0)
    } finally {
      srv.close()
    }
  })

  it('connection failures are clear errors with their cause, bounded in time, leaving nothing open', async () => {
    // Wrong password.
    const bad = new URL(server.url)
    bad.password = 'wrong'
    const app = uniqueName('app')
    bad.searchParams.set('application_name', app)
    const e1 = await postgres(bad.href)
      .tryLock('x')
      .catch((e: Error & { code?: string; cause?: unknown }) => e)
    expect(e1).toMatchObject({ code: expect.stringMatching(/^28/) })
    expect((e1 as Error).cause).toBeDefined()

    // Nothing listens.
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const closedPort = (closed.address() as { port: number }).port
    await new Promise((r) => closed.close(r))
    await expect(postgres(`postgres://u:p@127.0.0.1:${closedPort}/db`).tryLock('x')).rejects.toMatchObject({ code: 'ECONNREFUSED' })

    // A host that accepts and never answers: the connect timeout bounds it.
    const silent = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const t0 = Date.now()
    await expect(
      postgres({ connectionString: `postgres://u:p@127.0.0.1:${(silent.address() as { port: number }).port}/db`, connectTimeout: 500 }).tryLock('x'),
    ).rejects.toMatchObject({
      code: 'ETIMEDOUT',
    })
    expect(Date.now() - t0).toBeLessThan(10_000)
    silent.close()

    if (!server.embedded) return
    // The server drops the connection in the middle of an acquisition.
    for (const dropAfter of [1, 2, 3, 4]) {
      const name = uniqueName('drop')
      const proxy = await Proxy.statements(target(server.url), { dropAfter })
      try {
        const err = await postgres(withApp(via(server.url, proxy.port), app))
          .tryLock(name)
          .then(
            (l) => {
              l.release()
              return undefined
            },
            (e: Error & { code?: string }) => e,
          )
        if (err !== undefined) expect(typeof err.code).toBe('string')
        expect(await until(async () => !(await postgres(server.url).inspect(name)).locked, 5000)).toBe(true)
      } finally {
        await proxy.close()
      }
    }
    expect(await until(async () => (await sessions(c, app)) === 0, 5000)).toBe(true)
  })

  it.runIf(server.embedded)('refuses a connection whose statements go to different server processes (transaction-mode pooler)', async () => {
    const name = uniqueName('pool')
    const proxy = await Proxy.statements(target(server.url), { connections: 2 })
    const locks = postgres(via(server.url, proxy.port))
    try {
      await expect(locks.tryLock(name)).rejects.toMatchObject({ code: 'EPOOLER' })
      await expect(locks.lock(name, { timeout: 1000 })).rejects.toMatchObject({ code: 'EPOOLER' })
      const direct = postgres(server.url)
      // Whatever the pooler's connection took is let go with the connection.
      expect(await until(async () => !(await direct.inspect(name)).locked, 5000)).toBe(true)
      await direct.close()
    } finally {
      await locks.close()
      await proxy.close()
    }
  })

  it('reports an advisory lock another application holds on the same key, never taking it as ours', async () => {
    const name = uniqueName('foreign')
    const a = postgres(server.url)
    try {
      const l = await a.tryLock(name)
      const key = l.path.split('#advisory=')[1]!
      await l[Symbol.asyncDispose]()
      const other = await admin(server.url)
      await other.query('SELECT pg_advisory_lock($1::int8)', [key])
      const err = (await a.tryLock(name).catch((e: unknown) => e)) as LockedError
      expect(err.code).toBe('ELOCKED')
      expect(err.holder).toBeUndefined()
      const st = await a.inspect(name)
      expect(st.locked).toBe(true)
      expect(st.holder).toBeUndefined()
      // stop neither signals nor ends a session that is not a holder of this lock.
      expect(await a.stop(name, { timeout: 200, force: true })).toMatchObject({ stopped: false, forced: false })
      await other.end()
    } finally {
      await a.close()
    }
  })

  it.runIf(server.embedded)('works without the record table: no holder named, the lock itself intact', async () => {
    const role = uniqueName('r').replace(/-/g, '_')
    const schema = uniqueName('s').replace(/-/g, '_')
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`)
    await c.query(`CREATE SCHEMA ${schema}`)
    const u = new URL(server.url)
    u.username = role
    u.password = 'pw'
    const name = uniqueName('nopriv')
    const a = postgres({ connectionString: u.href, schema })
    const b = postgres({ connectionString: u.href, schema })
    try {
      const l = await a.tryLock(name, { data: { x: 1 } })
      expect(typeof l.fence).toBe('bigint')
      const err = (await b.tryLock(name).catch((e: unknown) => e)) as LockedError
      expect(err.code).toBe('ELOCKED')
      expect(err.holder).toBeUndefined()
      expect((await b.inspect(name)).locked).toBe(true)
      expect(await b.list()).toEqual([])
      await l[Symbol.asyncDispose]()
      expect((await b.inspect(name)).locked).toBe(false)
      // stop reaches a holder that could write no record, and ends its session with force.
      const stubborn = new Host(u.href, { schema, ignoreTerm: true })
      await stubborn.event('ready')
      expect((await stubborn.ask('try', { name })).ok).toBe(true)
      expect(await b.stop(name, { timeout: 300, force: true })).toMatchObject({ stopped: true, forced: true })
      expect((await stubborn.event('sigterm')).event).toBe('sigterm')
      expect((await stubborn.event('lost')).code).toBe('ELOCKLOST')
      stubborn.kill()
    } finally {
      await a.close()
      await b.close()
      await c.query(`DROP SCHEMA ${schema} CASCADE`)
      await c.query(`DROP ROLE ${role}`)
    }
  })
})
