import { execFileSync, fork } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { tryLock } from '../src/index.js'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'

describe('signals and cleaners', () => {
  it('lock operations survive a shower of signals (EINTR is retried)', async () => {
    const dir = tmpDir()
    const proc = fork(path.join(FIXTURES, 'signalled.cjs'), [uniqueName(), dir, '5000', '3000'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const exit = new Promise<number | null>((resolve) => proc.once('exit', resolve))
    await new Promise((r) => proc.once('message', r))
    type Result = { signals: number; rounds: number; waits: number; error?: string }
    // Its result, or an error if it exits first: never a wait for a message that cannot come.
    const done = Promise.race([
      new Promise<Result>((resolve) => proc.once('message', (m) => resolve(m as Result))),
      exit.then((code) => ({ signals: 0, rounds: 0, waits: 0, error: `exited with ${code} before reporting` })),
    ])
    proc.send('go')
    let finished = false
    void done.then(() => (finished = true))
    // Bursts of signals every millisecond: one is pending at almost every
    // moment. Not a signal per turn of this loop: sent faster than the child
    // drains them, libuv's reading of its signal pipe never ends and the
    // child's timers starve (a 20 ms wait was seen to take 15 s), so how long
    // the test ran would depend on how much CPU each process got.
    while (!finished) {
      for (let i = 0; i < 20; i++) proc.kill('SIGUSR1')
      await new Promise((r) => setTimeout(r, 1))
    }
    const result = await done
    expect(result.error).toBeUndefined()
    expect(result.signals).toBeGreaterThan(0)
    // At least one round of 100 tryLocks and lock()s, under fire.
    expect(result.rounds).toBeGreaterThanOrEqual(100)
    expect(result.waits).toBe(result.rounds / 100)
    proc.kill()
    await exit
  })

  it('holds a shared flock on the scope directory, so systemd-tmpfiles skips it', () => {
    const lock = tryLock(uniqueName())
    const dir = path.dirname(lock.path)
    // systemd-tmpfiles takes LOCK_EX|LOCK_NB on a directory before cleaning it.
    expect(() => execFileSync('flock', ['-x', '-n', dir, 'true'])).toThrow()
    lock.release()
  })
})
