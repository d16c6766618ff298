import { describe, expect, it } from 'vitest'
import { adminOf, Host, servers, uniqueName } from './helpers.js'

// Each "host" is a process of its own with its own connection
// (fixtures/holder.cjs); readiness and results come over IPC.

describe.each(servers)('postgres locks across processes ($name server)', (server) => {
  const db = adminOf(server.url)

  /** `n` host processes on this server, ready; killed after the test even if one never gets ready. */
  async function hosts(n: number, options: Record<string, unknown> = {}): Promise<Host[]> {
    const hs = Array.from({ length: n }, () => new Host(server.url, options))
    db.started.push(...hs)
    await Promise.all(hs.map((h) => h.event('ready')))
    return hs
  }

  it('8 processes racing for one lock: exactly one wins, round after round', async () => {
    const name = uniqueName('race')
    const hs = await hosts(8)
    const fences: bigint[] = []
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(hs.map((h) => h.ask('try', { name })))
      const winners = replies.flatMap((r, i) => (r.ok ? [i] : []))
      expect(winners).toHaveLength(1)
      for (const r of replies) if (!r.ok) expect(r.code).toBe('ELOCKED')
      fences.push(BigInt(replies[winners[0]!]!.fence!))
      expect((await hs[winners[0]!]!.ask('release', { name })).ok).toBe(true)
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!)
    for (const h of hs) h.kill()
  })

  it('SIGKILL of the holder: a waiting process holds the lock promptly', async () => {
    const name = uniqueName('kill')
    const [a, b] = await hosts(2)
    const ra = await a!.ask('try', { name })
    expect(ra.ok).toBe(true)
    // Kill once b waits on the server (its request shows in pg_locks, not granted).
    const waiting = b!.ask('lock', { name })
    const key = (ra.path as string).split('#advisory=')[1]
    const queued = Date.now() + 10_000
    while (Date.now() < queued) {
      const r = await db.c.query(
        `SELECT count(*)::int AS n FROM pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
        [key],
      )
      if ((r.rows[0] as { n: number }).n > 0) break
    }
    const t0 = Date.now()
    a!.kill('SIGKILL')
    const r = await waiting
    const took = Date.now() - t0
    console.log(`${server.name}: SIGKILL of the holder → the waiter holds the lock: ${took} ms`)
    expect(r.ok).toBe(true)
    // The bound is 1 s on a live host; generous here for a loaded machine.
    expect(took).toBeLessThan(5000)
    b!.kill()
  })

  it('pg_terminate_backend of the holder: its signal aborts with ELOCKLOST, another acquires with a greater fence', async () => {
    const name = uniqueName('term')
    const [a, b] = await hosts(2)
    const ra = await a!.ask('try', { name })
    expect(ra.ok).toBe(true)
    const st = (await b!.ask('inspect', { name })).status as { holder: { backendPid: number } }
    const waiting = b!.ask('lock', { name })
    await db.c.query('SELECT pg_terminate_backend($1)', [st.holder.backendPid])
    const lost = await a!.event('lost')
    expect(lost.code).toBe('ELOCKLOST')
    const rb = await waiting
    expect(rb.ok).toBe(true)
    expect(BigInt(rb.fence!)).toBeGreaterThan(BigInt(ra.fence!))
    a!.kill()
    b!.kill()
  })

  it('stop asks the verified holder to exit; with force it ends the session of a holder that stays', async () => {
    const name = uniqueName('stop')
    const [a, s] = await hosts(2)
    expect((await a!.ask('try', { name, options: { data: { role: 'a' } } })).ok).toBe(true)
    const r = await s!.ask('stop', { name, options: { timeout: 10_000 } })
    expect(r.result).toMatchObject({ stopped: true, pid: a!.child.pid, forced: false, holder: { pid: a!.child.pid, name, scope: 'cluster' } })
    expect((await a!.exited).signal).toBe('SIGTERM')

    const [stubborn] = await hosts(1, { ignoreTerm: true })
    expect((await stubborn!.ask('try', { name })).ok).toBe(true)
    const forced = await s!.ask('stop', { name, options: { timeout: 500, force: true } })
    expect(forced.result).toMatchObject({ stopped: true, pid: stubborn!.child.pid, forced: true })
    expect((await stubborn!.event('sigterm')).event).toBe('sigterm')
    expect((await stubborn!.event('lost')).code).toBe('ELOCKLOST')
    expect((await s!.ask('stop', { name })).result).toEqual({ stopped: true, forced: false })
    stubborn!.kill()
    s!.kill()
  })

  it('singleInstance: a second instance exits with a message naming the holder; a lost lock exits 1', async () => {
    const name = uniqueName('guard')
    const [a, b] = await hosts(2)
    const ra = await a!.ask('guard', { name })
    expect(ra.ok).toBe(true)
    b!.ask('guard', { name }).catch(() => {})
    expect((await b!.exited).code).toBe(1)
    await expect(b!.ask('guard', { name, options: { onLocked: 'throw' } })).rejects.toThrow()
    const [t] = await hosts(1)
    expect(await t!.ask('guard', { name, options: { onLocked: 'throw' } })).toMatchObject({ ok: false, code: 'ELOCKED' })
    // replace: the holder is asked to exit, and the newcomer takes over.
    const rr = await t!.ask('guard', { name, options: { onLocked: 'replace', timeout: 5000 } })
    expect(rr.ok).toBe(true)
    expect((await a!.exited).signal).toBe('SIGTERM')
    // Lost: the guard says so and exits 1.
    const st = await db.c.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`,
      [(rr.path as string).split('#advisory=')[1]],
    )
    await db.c.query('SELECT pg_terminate_backend($1)', [st.rows[0]!.pid])
    expect((await t!.exited).code).toBe(1)
  })
})
