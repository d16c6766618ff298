import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Location } from '../src/core/backend.js'
import { endHolder, stop } from '../src/api/stop.js'
import { stopReport } from '../src/core/format.js'

// A holder proven to hold the lock can let go or exit before its signal
// (and then it is not signalled). If the lock is still held when time runs
// out and no holder could be signalled at all, the stop reports the lock
// held by nobody it could verify, never "held by" a pid it did not signal.

const fake = vi.hoisted(() => ({
  provesHolders: true,
  locate: ({ name }: { name: string }) => ({ name, key: undefined, scope: 'user', path: `/nonexistent/${name}.lock`, id: `user:/nonexistent/${name}.lock` }),
  probe: (): { held: true; record: string | null } => ({ held: true, record: null }),
  holders: (): number[] => [4242],
  taker: () => 4242,
  // The proven holder is gone each time it is to be signalled.
  terminate: vi.fn(() => false),
  wait: (_loc: unknown, _record: unknown, timeout: number) => new Promise((resolve) => setTimeout(() => resolve({ held: true, record: null }), timeout)),
}))
vi.mock('../src/backends/index.js', () => ({ backend: fake }))

const loc: Location = { name: 'x', key: undefined, scope: 'user', path: '/nonexistent/x.lock', id: 'user:/nonexistent/x.lock' }

describe('endHolder: nobody signalled', () => {
  it('held when time runs out, with no holder signalled: unproven, without a pid', async () => {
    const e = await endHolder(loc, { signal: 'SIGTERM', timeout: 0, force: false })
    expect(fake.terminate).toHaveBeenCalledWith(loc, 4242, 'SIGTERM')
    expect(e).toEqual({ state: 'unproven', forced: false })
  })

  it('with force, and no SIGKILL sent either: not forced', async () => {
    fake.terminate.mockClear()
    const e = await endHolder(loc, { signal: 'SIGTERM', timeout: 0, force: true })
    expect(fake.terminate).toHaveBeenCalledWith(loc, 4242, 'SIGKILL')
    expect(e).toEqual({ state: 'unproven', forced: false })
  })
})

// The same through stop(): nobody was signalled, and the result says why and
// whose record it found, as `instance-lock stop` reports it.
describe('stop(): a holder that could not be verified', () => {
  const record = { pid: 4242, hostname: 'elsewhere', startedAt: '2026-01-01T00:00:00.000Z', name: 'x', scope: 'user' }
  afterEach(() => {
    fake.provesHolders = true
    fake.probe = () => ({ held: true, record: null })
    fake.holders = () => [4242]
  })

  it('where the system proves holders but shows none to this process: unseen, with the record', async () => {
    fake.probe = () => ({ held: true, record: JSON.stringify(record) })
    fake.holders = () => []
    fake.terminate.mockClear()
    expect(await stop('x', { timeout: 0, force: true })).toEqual({ stopped: false, forced: false, holder: record, unverified: 'unseen' })
    expect(fake.terminate).not.toHaveBeenCalled()
  })

  it('each proven holder gone before its signal, the lock held still: unseen', async () => {
    expect(await stop('x', { timeout: 0 })).toEqual({ stopped: false, forced: false, unverified: 'unseen' })
  })

  it('where the system cannot prove holders (flock outside Linux): unsupported, with the record', async () => {
    fake.provesHolders = false
    fake.probe = () => ({ held: true, record: JSON.stringify(record) })
    fake.holders = () => []
    fake.terminate.mockClear()
    expect(await stop('x', { timeout: 0 })).toEqual({ stopped: false, forced: false, holder: record, unverified: 'unsupported' })
    expect(fake.terminate).not.toHaveBeenCalled()
  })

  it("instance-lock stop's report of each, from the result alone", async () => {
    const how = { timeout: 0, signal: 'SIGTERM' }
    fake.probe = () => ({ held: true, record: JSON.stringify(record) })
    fake.holders = () => []
    expect(stopReport('Lock "x"', await stop('x', { timeout: 0 }), how)).toEqual({
      err: 'Lock "x" is held (its record names pid 4242 on elsewhere), but no process could be verified as its holder, so nothing was signalled. The holder may run as another user or in another pid namespace (a container): run stop there, or as root.\n',
    })
    fake.provesHolders = false
    expect(stopReport('Lock "x"', await stop('x', { timeout: 0 }), how)).toEqual({
      err: 'Lock "x" is held (its record names pid 4242 on elsewhere), but no process could be verified as its holder, so nothing was signalled. This system cannot tell which process holds a flock. If pid 4242 is the holder, stop it yourself: kill 4242\n',
    })
  })
})
