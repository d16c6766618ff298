import { fork, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'

function once<T>(proc: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited with ${code}`))
    proc.once('exit', onExit)
    proc.once('message', (m) => {
      proc.off('exit', onExit)
      resolve(m as T)
    })
  })
}

async function runStress(mode: 'try' | 'wait', procs: number, iterations: number): Promise<void> {
  const dir = tmpDir()
  const name = uniqueName('stress')
  const counter = path.join(dir, 'counter')
  fs.writeFileSync(counter, '0')
  const children = Array.from({ length: procs }, () =>
    fork(path.join(FIXTURES, 'stress.cjs'), [mode, name, dir, counter, String(iterations)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }),
  )
  try {
    await Promise.all(children.map((c) => once(c)))
    const exits = children.map((c) => new Promise<number | null>((resolve) => c.once('exit', resolve)))
    for (const c of children) c.send('go')
    expect(await Promise.all(exits)).toEqual(children.map(() => 0))
    expect(Number(fs.readFileSync(counter, 'utf8'))).toBe(procs * iterations)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

describe('start race', () => {
  it('40 processes released together: exactly one winner, round after round', async () => {
    const dir = tmpDir()
    const children = Array.from({ length: 40 }, () => fork(path.join(FIXTURES, 'racer.cjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    try {
      await Promise.all(children.map((c) => once(c)))
      for (let round = 0; round < 15; round++) {
        const name = uniqueName(`race${round}`)
        const results = children.map((c) => once<{ won: boolean; code?: string }>(c))
        for (const c of children) c.send({ op: 'go', name, dir })
        const r = await Promise.all(results)
        expect(r.filter((x) => x.won)).toHaveLength(1)
        expect(r.filter((x) => !x.won).every((x) => x.code === 'ELOCKED')).toBe(true)
        const released = children.map((c) => once(c))
        for (const c of children) c.send({ op: 'release' })
        await Promise.all(released)
      }
    } finally {
      for (const c of children) c.kill('SIGKILL')
    }
  }, 180_000)
})

describe('mutual exclusion under stress', () => {
  it('4 processes × 400 tryLock/release cycles never overlap', async () => {
    await runStress('try', 4, 400)
  }, 180_000)

  it('6 processes × 150 await lock()/release cycles never overlap', async () => {
    await runStress('wait', 6, 150)
  }, 180_000)
})
