import { describe, expect, it } from 'vitest'
import { checkConfig } from '../../src/backends/postgres/config.js'
import { Session } from '../../src/backends/postgres/session.js'
import { servers } from './helpers.js'

// The server's side of lost-lock detection: a holder's session must outlive
// the holder's own deadline, so that the holder is told first.

describe.each(servers)('a lock session ($name server)', (server) => {
  it('commits durably even where the database defaults to synchronous_commit = off: fences are never handed out twice', async () => {
    const u = new URL(server.url)
    u.searchParams.set('options', '-c synchronous_commit=off')
    const s = await Session.open(checkConfig({ connectionString: u.href }))
    try {
      const [r] = await s.query<{ v: string }>("SELECT current_setting('synchronous_commit') AS v")
      expect(r!.v).not.toBe('off')
    } finally {
      await s.end()
    }
  })

  it.each([1500, 5000])('with lostAfter %i, the server gives up on a silent client only well after it', async (lostAfter) => {
    const s = await Session.open(checkConfig({ connectionString: server.url, lostAfter }))
    try {
      // In pg_settings, each in its own unit: ms for tcp_user_timeout, s for the keepalives.
      const rows = await s.query<{ name: string; setting: string; unit: string | null }>(
        `SELECT name, setting, unit FROM pg_settings WHERE name IN ('tcp_user_timeout', 'tcp_keepalives_idle', 'tcp_keepalives_interval',
           'tcp_keepalives_count', 'statement_timeout', 'lock_timeout', 'idle_session_timeout')`,
      )
      const v = Object.fromEntries(rows.map((x) => [x.name, Number(x.setting) * (x.unit === 's' ? 1000 : 1)]))
      expect(v.tcp_user_timeout).toBeGreaterThanOrEqual(2 * lostAfter)
      expect(v.tcp_keepalives_idle! + v.tcp_keepalives_interval! * v.tcp_keepalives_count!).toBeGreaterThanOrEqual(2 * lostAfter)
      // No default of the database may cut a wait short or end a holder's idle session.
      expect([v.statement_timeout, v.lock_timeout, v.idle_session_timeout]).toEqual([0, 0, 0])
    } finally {
      await s.end()
    }
  })
})
