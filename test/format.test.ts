import { describe, expect, it } from 'vitest'
import { conflictMessage } from '../src/core/format.js'

// The guard's words when a lock is held, the same for a local lock and a
// PostgreSQL one; the command it suggests must stop that very lock.
describe('conflictMessage', () => {
  const holder = { pid: 4242, hostname: 'web-1', startedAt: new Date(Date.now() - 90_000).toISOString(), data: { port: 8080 } }

  it('names the holder and the command that stops a local lock', () => {
    const text = conflictMessage({ name: 'web', key: 'a b', scope: 'machine' }, holder, '/srv/locks')
    expect(text).toContain(`instance-lock: "web" for "a b" (machine scope) is already running as pid 4242 on web-1, since ${holder.startedAt} (`)
    expect(text).toMatch(/ \(1m\d+s ago\)\n/)
    expect(text).toContain('  data: port=8080\n')
    expect(text).toContain("  stop it with: npx instance-lock stop web --scope machine --key 'a b' --dir /srv/locks\n")
  })

  it('suggests --postgres for a PostgreSQL lock, with the URL or the variable that holds it', () => {
    const loc = { name: 'report', key: 'eu', scope: 'cluster' as const }
    const url = conflictMessage(loc, holder, undefined, 'postgres://db1:5432/app')
    expect(url).toContain('instance-lock: "report" for "eu" is already running as pid 4242 on web-1')
    expect(url).toContain('  stop it with: npx instance-lock stop report --key eu --postgres postgres://db1:5432/app\n')
    expect(conflictMessage(loc, undefined)).toContain('  stop it with: npx instance-lock stop report --key eu --postgres "$INSTANCE_LOCK_POSTGRES"\n')
  })
})
