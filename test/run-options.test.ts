import { execFileSync } from 'node:child_process'
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
