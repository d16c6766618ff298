import { describe, expect, it } from 'vitest'
import { inspect, tryLock } from '../src/index.js'
import { spawnChild, tmpDir, uniqueName } from './helpers.js'

describe('crash', () => {
  it('SIGKILL of the holder frees the lock at once', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir })
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    await child.kill('SIGKILL')
    expect(inspect(name, { dir }).locked).toBe(false)
    const lock = tryLock(name, { dir })
    lock.release()
  })

  it('a holder that spawned a long-lived child and died leaves the lock free (no inheritance)', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir })
    const grandchild = await child.call<number>('spawnSleeper')
    try {
      await child.kill('SIGKILL')
      expect(() => process.kill(grandchild, 0)).not.toThrow()
      const lock = tryLock(name, { dir })
      lock.release()
    } finally {
      process.kill(grandchild, 'SIGKILL')
    }
  })

  it('a holder exiting normally without release frees the lock', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir })
    void child.call('exit', 0).catch(() => {})
    expect(await child.exited).toEqual({ code: 0, signal: null })
    tryLock(name, { dir }).release()
  })
})
