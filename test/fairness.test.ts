import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { lock } from '../src/index.js'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'

describe('fairness across processes', () => {
  it('a waiting process gets the lock while two others re-take it back to back', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const stop = path.join(dir, 'stop')
    const hogs = [0, 1].map(() => spawn(process.execPath, [path.join(FIXTURES, 'hog.cjs'), name, dir, stop], { stdio: ['ignore', 'pipe', 'inherit'] }))
    const outputs = hogs.map((h) => {
      let out = ''
      h.stdout.on('data', (d) => (out += d))
      return new Promise<string>((resolve) => h.once('exit', () => resolve(out)))
    })
    try {
      // Both are re-taking it back to back before the third process asks.
      const bothHeld = Promise.all(hogs.map((h) => new Promise((resolve) => h.stdout.once('data', resolve))))
      const late = new Promise((_, reject) => setTimeout(() => reject(new Error('one looping process never got the lock')), 30_000).unref())
      await Promise.race([bothHeld, late])
      // Generous: it takes milliseconds; starving would take forever.
      const held = await lock(name, { dir, timeout: 30_000 })
      held.release()
    } finally {
      fs.writeFileSync(stop, '')
    }
    const rounds = (await Promise.all(outputs)).map((o) => Number(/rounds (\d+)/.exec(o)?.[1]))
    expect(rounds.every((r) => r > 0)).toBe(true)
  })
})
