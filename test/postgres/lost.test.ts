import { describe, expect, it } from 'vitest'
import { adminOf, Host, servers, uniqueName, until } from './helpers.js'
import { Proxy, target, via } from './proxy.js'
import { startServer } from './server.js'

// Losing a lock: the holder must be told, and told before anyone else can
// have the lock.

const LOST_AFTER = 1500

describe.each(servers)('a lost PostgreSQL lock ($name server)', (server) => {
  const db = adminOf(server.url)
  const { started } = db

  it('a network cut: the holder is told within lostAfter, while the server still holds its lock', async () => {
    const name = uniqueName('cut')
    const proxy = await Proxy.forward(target(server.url))
    try {
      const a = new Host(via(server.url, proxy.port), { lostAfter: LOST_AFTER })
      const b = new Host(server.url)
      started.push(a, b)
      await Promise.all([a.event('ready'), b.event('ready')])
      const ra = await a.ask('try', { name })
      expect(ra.ok).toBe(true)
      const key = (ra.path as string).split('#advisory=')[1]!
      const holderPid = async (): Promise<number | undefined> =>
        (
          await db.c.query<{ pid: number }>(
            `SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
            [key],
          )
        ).rows[0]?.pid
      const backend = await holderPid()
      expect(backend).toBeDefined()

      const cutAt = Date.now()
      proxy.cut()
      const lost = await a.event('lost')
      expect(lost.code).toBe('ELOCKLOST')
      const told = lost.at - cutAt
      console.log(`${server.name}: network cut → the holder told: ${told} ms (lostAfter ${LOST_AFTER})`)
      // lostAfter is the bound; the slack is for a loaded machine's timers and IPC.
      expect(told).toBeLessThan(LOST_AFTER + 1500)
      // Told, and the server has not let go: nobody else can hold it yet.
      expect(await holderPid()).toBe(backend)
      expect(await b.ask('try', { name })).toMatchObject({ ok: false, code: 'ELOCKED' })

      // The server gives up on the silent session (here: its connection closes) and frees the lock.
      proxy.dropUpstream()
      expect(await until(async () => (await holderPid()) === undefined, 10_000)).toBe(true)
      const rb = await b.ask('try', { name })
      expect(rb.ok).toBe(true)
      expect(BigInt(rb.fence!)).toBeGreaterThan(BigInt(ra.fence!))
      a.kill()
      b.kill()
    } finally {
      await proxy.close()
    }
  })

  it.runIf(server.embedded)('a server restart: every holder is told, and the locks can be taken again after', async () => {
    const own = await startServer()
    try {
      const hs = [new Host(own.info.url), new Host(own.info.url), new Host(own.info.url)]
      started.push(...hs)
      await Promise.all(hs.map((h) => h.event('ready')))
      const names = hs.map(() => uniqueName('restart'))
      for (const [i, h] of hs.entries()) expect((await h.ask('try', { name: names[i] })).ok).toBe(true)
      await own.restart()
      for (const h of hs) expect((await h.event('lost')).code).toBe('ELOCKLOST')
      for (const [i, h] of hs.entries()) {
        expect((await h.ask('release', { name: names[i] })).ok).toBe(true)
        expect((await h.ask('try', { name: names[i] })).ok).toBe(true)
      }
      for (const h of hs) h.kill()
    } finally {
      await own.stop()
    }
  })
})
