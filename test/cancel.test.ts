import { fork, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { inspect, tryLock } from '../src/index.js'
import { FIXTURES, ROOT, eventually, spawnChild, tmpDir, uniqueName } from './helpers.js'

// A wait settled by a timeout or an abort must never hold the lock
// afterwards, whatever moment the settling hit, and nothing of it may keep
// the process from exiting. Workers that waited or held must end cleanly,
// taking their waits, descriptors and locks with them.

// Every process a test starts is killed after it, whatever the test's
// outcome: a stressing process left holding the lock would spin for ever.
const started: ChildProcess[] = []
afterEach(() => {
  for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
})

function start(
  file: string,
  args: string[],
): { proc: ChildProcess; messages: unknown[]; next: () => Promise<unknown>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const proc = fork(path.join(FIXTURES, file), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  started.push(proc)
  const messages: unknown[] = []
  const waiting: Array<(m: unknown) => void> = []
  proc.on('message', (m) => {
    const w = waiting.shift()
    if (w !== undefined) w(m)
    else messages.push(m)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const next = () =>
    messages.length > 0
      ? Promise.resolve(messages.shift())
      : new Promise<unknown>((resolve, reject) => {
          waiting.push(resolve)
          void exited.then((e) => reject(new Error(`${file} exited (${JSON.stringify(e)}) before reporting`)))
        })
  return { proc, messages, next, exited }
}

/** Resolves with the exit, or rejects if it takes longer than `ms`. */
function exitWithin<T>(exited: Promise<T>, proc: ChildProcess, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`did not exit within ${ms} ms`))
    }, ms)
    void exited.then((e) => {
      clearTimeout(t)
      resolve(e)
    })
  })
}

describe('a settled wait never holds the lock', () => {
  it('2 × 2000 lock() calls timed out or aborted at random moments against a churning holder leave nothing held, and the processes exit', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const churn = start('churn.cjs', [name, dir])
    expect(await churn.next()).toBe('ready')
    const stressers = [0, 1].map(() => start('cancel-stress.cjs', [name, dir, '2000']))
    for (const stress of stressers) {
      const report = (await stress.next()) as { counts: { acquired: number; timedOut: number; aborted: number } }
      expect(report.counts.acquired + report.counts.timedOut + report.counts.aborted).toBe(2000)
    }
    churn.proc.send('stop')
    expect(((await churn.next()) as { cycles: number }).cycles).toBeGreaterThan(0)
    await churn.exited
    // The stressing processes are still alive: they must hold nothing.
    await eventually(() => !inspect(name, { dir }).locked, 'lock free while the stressing processes live', 10_000)
    tryLock(name, { dir }).release()
    for (const stress of stressers) {
      stress.proc.send('exit')
      expect(await exitWithin(stress.exited, stress.proc, 15_000)).toEqual({ code: 0, signal: null })
    }
  })

  it('4 processes retrying lock({ timeout: 1-5 ms }) around a counter all finish, with no lost increment', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const counter = path.join(dir, 'counter')
    fs.writeFileSync(counter, '0')
    const procs = Array.from({ length: 4 }, () => start('stress.cjs', ['retry', name, dir, counter, '150']))
    for (const p of procs) expect(await p.next()).toBe('ready')
    for (const p of procs) p.proc.send('go')
    for (const p of procs) expect(await exitWithin(p.exited, p.proc, 120_000)).toEqual({ code: 0, signal: null })
    expect(Number(fs.readFileSync(counter, 'utf8'))).toBe(600)
  })
})

describe('Workers end cleanly, and take their waits and locks with them', () => {
  async function scenario(name: string, dir: string, which: string, count: number): Promise<{ seen: string[]; before: number; after: number }> {
    const p = start('workers.cjs', [which, ROOT, name, dir, String(count)])
    const report = (await p.next()) as { seen: string[]; before: number; after: number }
    expect(await exitWithin(p.exited, p.proc, 30_000)).toEqual({ code: 0, signal: null })
    return report
  }

  async function heldElsewhere(): Promise<{ dir: string; name: string; release: () => Promise<unknown> }> {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    const { path: p } = await child.call<{ path: string }>('tryLock', name, { dir })
    return { dir, name, release: () => child.call('release', p) }
  }

  it('Workers whose lock() timed out end without crashing a process that never loaded the package', async () => {
    const { dir, name } = await heldElsewhere()
    const r = await scenario(name, dir, 'timeout', 20)
    expect(r.seen).toEqual(Array(20).fill('ELOCKED'))
  })

  it('Workers terminated while lock() waits end without crashing a process that never loaded the package', async () => {
    const { dir, name } = await heldElsewhere()
    const r = await scenario(name, dir, 'terminate', 20)
    expect(r.seen).toEqual(Array(20).fill('waiting'))
  })

  it.runIf(process.platform === 'linux')('a Worker terminated with 8 pending lock() calls leaves no descriptor behind', async () => {
    const { dir, name } = await heldElsewhere()
    const r = await scenario(name, dir, 'pending', 8)
    expect(r.after).toBeLessThanOrEqual(r.before)
  })

  it('a lock taken in a Worker is released when the Worker ends', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const p = start('workers.cjs', ['held', ROOT, name, dir, '1'])
    const report = (await p.next()) as { seen: string[] }
    expect(report.seen).toEqual(['held'])
    // The process lives on (it exits after reporting); the Worker is gone.
    expect(inspect(name, { dir }).locked).toBe(false)
    await exitWithin(p.exited, p.proc, 30_000)
  })
})
