import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, tryLock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'
import { COMMAND, Cli, cli, hasExited, startHolder, track } from './stop-fixtures.js'

// instance-lock run's --no-inherit (flock -o) and --quiet.

const node = process.execPath

/** flock(1) on the lock file, where installed: the kernel's own answer. */
function flockSays(file: string): 'held' | 'free' | undefined {
  try {
    execFileSync('flock', ['-n', file, 'true'], { stdio: 'ignore' })
    return 'free'
  } catch (err) {
    return (err as { status?: number }).status === 1 ? 'held' : undefined
  }
}

// sh leaves a sleep running in the background, with every descriptor sh
// passes on, and exits.
const DAEMON = ['sh', '-c', 'sleep 60 </dev/null >/dev/null 2>&1 & echo $!']

describe.skipIf(process.platform !== 'linux')('run --no-inherit', () => {
  it('a daemon COMMAND leaves behind does not keep the lock (it does without --no-inherit)', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const r = await cli('run', name, '--dir', dir, '--no-inherit', '--', ...DAEMON)
    expect(r.code).toBe(0)
    const daemon = Number(r.stdout.trim())
    track(daemon)
    expect(hasExited(daemon)).toBe(false)
    expect(inspect(name, { dir }).locked).toBe(false)
    expect(flockSays(inspect(name, { dir }).path)).not.toBe('held')
    tryLock(name, { dir }).release()

    const inherited = await cli('run', name, '--dir', dir, '--', ...DAEMON)
    expect(inherited.code).toBe(0)
    const keeper = Number(inherited.stdout.trim())
    track(keeper)
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    process.kill(keeper, 'SIGKILL')
    await expect.poll(() => hasExited(keeper), { timeout: 10_000 }).toBe(true)
    await expect.poll(() => inspect(name, { dir }).locked, { timeout: 10_000 }).toBe(false)
  })

  it('instance-lock holds the lock while COMMAND runs, and the lock is free at once if instance-lock is killed', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const run = new Cli(['run', name, '--dir', dir, '--no-inherit', '--', node, COMMAND, 'hold', '5'])
    const pid = await run.commandPid()
    // The holder to stop is instance-lock, which passes signals on.
    expect(inspect(name, { dir })).toMatchObject({ locked: true, holder: { pid: run.pid } })
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    run.proc.kill('SIGKILL')
    await run.exited
    expect(hasExited(pid)).toBe(false)
    expect(inspect(name, { dir }).locked).toBe(false)
    tryLock(name, { dir }).release()

    // While instance-lock lives, COMMAND's exit (code 5) frees it and is passed on.
    const second = new Cli(['run', name, '--dir', dir, '--no-inherit', '--', node, COMMAND, 'hold', '5'])
    await second.commandPid()
    expect(inspect(name, { dir }).holder?.pid).toBe(second.pid)
    second.endInput()
    expect((await second.result()).code).toBe(5)
    tryLock(name, { dir }).release()
  })
})

describe.skipIf(process.platform !== 'linux')('run --quiet', () => {
  it('prints nothing when the lock is held, exits with the conflict exit code, and runs nothing', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    await startHolder(name, { dir }, 'hold')
    const quiet = await cli('run', name, '--dir', dir, '--quiet', '--conflict-exit-code', '0', '--', node, '-e', 'console.log("ran")')
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' })
    const waited = await cli('run', name, '--dir', dir, '--quiet', '--wait=100', '--', node, '-e', 'console.log("ran")')
    expect(waited).toMatchObject({ code: 1, stdout: '', stderr: '' })
    const loud = await cli('run', name, '--dir', dir, '--', node, '-e', 'console.log("ran")')
    expect(loud.code).toBe(1)
    expect(loud.stderr).toContain('is already running')
  })
})

describe('run --data with COMMAND', () => {
  it('a --data that fits alone but not beside COMMAND is bad usage (exit 2), and a very long COMMAND is recorded cut short', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    // 16 KiB of data alone fits; with COMMAND's text beside it, it does not.
    const big = JSON.stringify({ blob: 'x'.repeat(16 * 1024 - 20) })
    const marker = path.join(dir, 'ran')
    const r = await cli('run', name, '--dir', dir, '--data', big, '--', node, COMMAND, 'touch', marker)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^instance-lock: .*data/)
    expect(fs.existsSync(marker)).toBe(false)
    expect(inspect(name, { dir }).locked).toBe(false)
    // A COMMAND whose text alone is longer than a record may hold still runs.
    const long = await cli('run', name, '--dir', dir, '--', node, COMMAND, 'touch', marker, ...Array(3000).fill('argument'))
    expect(long.code).toBe(0)
    expect(fs.existsSync(marker)).toBe(true)
  })
})
