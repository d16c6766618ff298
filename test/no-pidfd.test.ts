import { describe, expect, it, vi } from 'vitest'
import { stop, tryLock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'
import { startHolder } from './stop-fixtures.js'

// A system without pidfds (Linux < 5.3, or a seccomp filter that refuses
// pidfd_open with ENOSYS): stop() verifies the holder and signals it by pid,
// and stops asking for pidfds after the first refusal.

const refused = vi.hoisted(() => ({ calls: 0 }))

vi.mock('../src/backends/addon.js', async (importOriginal) => {
  const { native } = await importOriginal<typeof import('../src/backends/addon.js')>()
  const pidfdOpen = (): never => {
    refused.calls++
    throw Object.assign(new Error('pidfd_open failed'), { errno: 38, syscall: 'pidfd_open' }) // ENOSYS
  }
  return { native: new Proxy(native, { get: (t, k) => (k === 'pidfdOpen' ? pidfdOpen : (Reflect.get(t, k) as unknown)) }) }
})

describe.skipIf(process.platform !== 'linux')('stop() where pidfd_open is refused', () => {
  it('signals the verified holder by pid, and learns once that there are no pidfds', async () => {
    const dir = tmpDir()
    for (const name of [uniqueName(), uniqueName()]) {
      const holder = await startHolder(name, { dir }, 'hold')
      expect(await stop(name, { dir })).toEqual({ stopped: true, pid: holder.pid, forced: false, holder: expect.objectContaining({ name, pid: holder.pid }) })
      expect(await holder.exited).toEqual({ code: null, signal: 'SIGTERM' })
      tryLock(name, { dir }).release()
    }
    expect(refused.calls).toBe(1)
  })
})
