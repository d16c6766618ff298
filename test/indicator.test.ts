import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, eventually, spawnChild, tmpDir, uniqueName } from './helpers.js'

// Linux: inspect() asks "is it held?" through an open-file-description lock
// the holder sets beside its flock (the inspection indicator), then reads
// the record. A holder that set the indicator before writing its record
// would, for a moment, show as held by the previous holder (a process
// possibly killed). The order of the two system calls is what guarantees
// it, so that order is what is checked, on the holder's own trace.

const hasStrace = process.platform === 'linux' && spawnSync('strace', ['-V']).status === 0
if (!hasStrace) console.warn(`indicator.test.ts skipped: ${process.platform === 'linux' ? 'strace is not installed' : 'the indicator exists on Linux only'}`)

/** Runs `script` under strace; resolves with its record writes and indicator sets, in order. */
async function traced(script: string): Promise<string[]> {
  const out = path.join(tmpDir(), 'trace')
  const proc = spawn('strace', ['-f', '-qq', '-e', 'trace=pwrite64,fcntl', '-o', out, process.execPath, '-e', script], { cwd: ROOT, stdio: 'ignore' })
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve))
  expect(code).toBe(0)
  return fs
    .readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => / pwrite64\(/.test(l) || /F_OFD_SETLK, \{l_type=F_WRLCK/.test(l))
    .map((l) => (/ pwrite64\(/.test(l) ? 'record' : 'indicator'))
}

describe.skipIf(!hasStrace)('the record is written before the lock shows as held (Linux, strace)', () => {
  it('tryLock writes the record, then sets the indicator', async () => {
    const dir = tmpDir()
    const steps = await traced(`require(${JSON.stringify(ROOT)}).tryLock(${JSON.stringify(uniqueName())}, { dir: ${JSON.stringify(dir)} })`)
    expect(steps).toEqual(['record', 'indicator'])
  })

  it('a waiting thread that gets the lock writes the record, then sets the indicator', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    const { path: p } = await child.call<{ path: string }>('tryLock', name, { dir })
    const waiting = path.join(dir, 'waiting')
    // It says it waits once its waiting thread exists; the holder then lets go.
    const script = `
      const fs = require('node:fs')
      require(${JSON.stringify(ROOT)}).lock(${JSON.stringify(name)}, { dir: ${JSON.stringify(dir)}, timeout: 30000 }).then((l) => l.release())
      const thread = () => fs.readdirSync('/proc/self/task').some((t) => fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'instance-lock')
      const look = () => (thread() ? fs.writeFileSync(${JSON.stringify(waiting)}, '') : setImmediate(look))
      look()`
    const steps = traced(script)
    await eventually(() => fs.existsSync(waiting), 'the traced process waits', 30_000)
    await child.call('release', p)
    expect(await steps).toEqual(['record', 'indicator'])
  })
})
