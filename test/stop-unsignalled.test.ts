import { describe, expect, it, vi } from 'vitest'
import type { Location } from '../src/core/backend.js'
import { endHolder } from '../src/api/stop.js'

// A holder proven to hold the lock can let go or exit before its signal
// (and then it is not signalled). If the lock is still held when time runs
// out and no holder could be signalled at all, the stop reports the lock
// held by nobody it could verify, never "held by" a pid it did not signal.

const fake = vi.hoisted(() => ({
  probe: () => ({ held: true, record: null }),
  holders: () => [4242],
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
