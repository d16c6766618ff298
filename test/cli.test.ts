import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, lock, tryLock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'
import { COMMAND, Cli, cli, forgeRecord, hasExited, signalsSeen, startHolder } from './stop-fixtures.js'

// The instance-lock command, run as users run it: verbs, flags, exit codes.

const hasFlock = (() => {
  try {
    execFileSync('flock', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** flock(1) on the lock file: the kernel's own answer, independent of this package. */
function flockSays(file: string): 'held' | 'free' {
  try {
    execFileSync('flock', ['-n', file, 'true'])
    return 'free'
  } catch {
    return 'held'
  }
}

const node = process.execPath

describe('usage', () => {
  it('bad usage prints what is wrong and the usage on stderr, exits 2, and touches nothing', async () => {
    const dir = path.join(tmpDir(), 'never-created')
    const bad: string[][] = [
      [],
      ['frobnicate'],
      ['status', '--bogus'],
      ['status', 'a', 'b'],
      ['status', '--key', 'k', '--dir', dir],
      ['status', 'a/b', '--dir', dir],
      ['status', 'x', '--scope', 'galaxy', '--dir', dir],
      ['status', 'x', '--dir'],
      ['stop', '--dir', dir],
      ['stop', 'x', '--timeout', 'soon', '--dir', dir],
      ['stop', 'x', '--timeout', '-5', '--dir', dir],
      ['stop', 'x', '--signal', 'SIGNOPE', '--dir', dir],
      ['stop', '.hidden', '--dir', dir],
      ['run', 'x', '--dir', dir],
      ['run', 'x', '--dir', dir, '--'],
      ['run', '--dir', dir, '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--wait', '500', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--wait=soon', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--wait', '--replace', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--timeout', '5', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--conflict-exit-code', '256', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--conflict-exit-code', 'two', '--', node, '-e', '0'],
      ['run', 'x', '--dir', dir, '--bogus', '--', node, '-e', '0'],
      ['help', 'frobnicate'],
    ]
    for (const args of bad) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(/^instance-lock: .+\nUsage:/)
      expect(r.stderr, args.join(' ')).toMatch(/--help' for help/)
      expect(r.stdout).toBe('')
    }
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('--help for every command, on stdout, exit 0', async () => {
    for (const [args, first] of [
      [['--help'], /^instance-lock: /],
      [['help'], /^instance-lock: /],
      [['-h'], /^instance-lock: /],
      [['help', 'run'], /^Usage: instance-lock run NAME/],
      [['status', '--help'], /^Usage: instance-lock status \[NAME\]/],
      [['stop', '-h'], /^Usage: instance-lock stop NAME/],
      [['run', '--help'], /^Usage: instance-lock run NAME/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(0)
      expect(r.stdout, args.join(' ')).toMatch(first)
      expect(r.stderr).toBe('')
    }
    const v = await cli('--version')
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+/)
  })
})

describe.skipIf(process.platform !== 'linux')('status', () => {
  it('NAME: 0 and the holder when held, 3 when not; --json prints the LockStatus', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const free = await cli('status', name, '--dir', dir)
    expect(free.code).toBe(3)
    expect(free.stdout).toMatch(/is not held/)
    const freeJson = await cli('status', name, '--dir', dir, '--json')
    expect(freeJson.code).toBe(3)
    expect(JSON.parse(freeJson.stdout)).toMatchObject({ name, locked: false, scope: 'user' })

    const keyFile = path.join(dir, 'app.sqlite')
    fs.writeFileSync(keyFile, '')
    const holder = await startHolder(name, { dir, key: keyFile, data: { port: 4242 } }, 'hold')
    // The key given by another spelling of the same file names the same lock.
    const spelled = path.join(dir, '.', 'app.sqlite')
    const held = await cli('status', name, '--dir', dir, '--key', spelled)
    expect(held.code).toBe(0)
    expect(held.stdout).toContain(`pid ${holder.pid}`)
    expect(held.stdout).toContain('port=4242')
    const json = await cli('status', name, '--dir', dir, '--key', spelled, '--json')
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual(inspect(name, { dir, key: keyFile }))
    expect(JSON.parse(json.stdout)).toMatchObject({ locked: true, holder: { pid: holder.pid, data: { port: 4242 } } })
    // Without the key it is another lock, not held.
    expect((await cli('status', name, '--dir', dir)).code).toBe(3)
  })

  it('without NAME: the held locks of the directory, both scopes, by name; --all adds the free ones; exit 0', async () => {
    const dir = tmpDir()
    const empty = await cli('status', '--dir', dir)
    expect(empty.code).toBe(0)
    expect(empty.stdout).toMatch(/^No locks in /)
    expect(JSON.parse((await cli('status', '--dir', dir, '--json')).stdout)).toEqual([])

    // Sorted by name, then key (none first), then scope; not in file order (name, then key hash).
    const [a, b, c] = ['a', 'b', 'c'].map((p) => `${p}-${uniqueName()}`) as [string, string, string]
    tryLock(b, { dir }).release()
    const keyFile = path.join(dir, 'z.sqlite')
    fs.writeFileSync(keyFile, '')
    const held = [
      await startHolder(c, { dir, key: keyFile }, 'hold'),
      await startHolder(c, { dir, key: 'a-key' }, 'hold'),
      await startHolder(a, { dir, data: { port: 3000 } }, 'hold'),
      await startHolder(a, { dir, scope: 'machine' }, 'hold'),
    ]
    const onlyFree = await cli('status', b, '--dir', dir)
    expect(onlyFree.code).toBe(3)

    const r = await cli('status', '--dir', dir)
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^NAME\s+KEY\s+SCOPE\s+STATE\s+READY\s+PID\s+STARTED\s+AGE\s+DATA$/)
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 6))).toEqual([
      [a, '-', 'user', 'held', 'starting', String(held[2]!.pid)],
      [a, '-', 'machine', 'held', 'starting', String(held[3]!.pid)],
      [c, fs.realpathSync(keyFile), 'user', 'held', 'starting', String(held[0]!.pid)],
      [c, 'a-key', 'user', 'held', 'starting', String(held[1]!.pid)],
    ])
    expect(lines[1]).toMatch(new RegExp(`^${a}\\s+-\\s+user\\s+held\\s+starting\\s+${held[2]!.pid}\\s+\\S+Z\\s+\\d+s\\s+port=3000$`))

    const all = await cli('status', '--dir', dir, '--all')
    expect(all.code).toBe(0)
    expect(
      all.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/).slice(0, 4)),
    ).toEqual([
      [a, '-', 'user', 'held'],
      [a, '-', 'machine', 'held'],
      [b, '-', 'user', 'free'],
      [c, fs.realpathSync(keyFile), 'user', 'held'],
      [c, 'a-key', 'user', 'held'],
    ])

    // --scope keeps to one scope, and drops the SCOPE column.
    const machine = await cli('status', '--dir', dir, '--scope', 'machine')
    expect(
      machine.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 3)),
    ).toEqual([
      ['NAME', 'KEY', 'STATE'],
      [a, '-', 'held'],
    ])

    const json = JSON.parse((await cli('status', '--dir', dir, '--json')).stdout) as Array<{ name: string; key?: string; scope: string; locked: boolean }>
    expect(json.map((s) => [s.name, s.key, s.scope, s.locked])).toEqual([
      [a, undefined, 'user', true],
      [a, undefined, 'machine', true],
      [c, fs.realpathSync(keyFile), 'user', true],
      [c, 'a-key', 'user', true],
    ])
    const jsonAll = JSON.parse((await cli('status', '--dir', dir, '--json', '--all')).stdout) as Array<{ name: string; locked: boolean }>
    expect(jsonAll.map((s) => [s.name, s.locked])).toEqual([
      [a, true],
      [a, true],
      [b, false],
      [c, true],
      [c, true],
    ])

    // Nothing held, but lock files left: said so, and how to see them.
    for (const h of held) h.proc.kill('SIGKILL')
    await Promise.all(held.map((h) => h.exited))
    const none = await cli('status', '--dir', dir)
    expect(none.code).toBe(0)
    expect(none.stdout).toMatch(/^No locks held in .*--all/)
    expect(JSON.parse((await cli('status', '--dir', dir, '--json')).stdout)).toEqual([])
  })

  it('NAME not held, but held in the other scope or with a key: says so on stderr with the options that reach it', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const keyFile = path.join(dir, 'a.db')
    fs.writeFileSync(keyFile, '')
    await startHolder(name, { dir, scope: 'machine' }, 'hold')
    await startHolder(name, { dir, key: keyFile }, 'hold')

    const r = await cli('status', name, '--dir', dir)
    expect(r.code).toBe(3)
    expect(r.stdout).toMatch(/is not held/)
    expect(r.stderr).toContain(`instance-lock status ${name} --scope machine --dir ${dir}\n`)
    expect(r.stderr).toContain(`instance-lock status ${name} --key ${fs.realpathSync(keyFile)} --dir ${dir}\n`)
    // --json keeps stdout to the LockStatus.
    const j = await cli('status', name, '--dir', dir, '--json')
    expect(j.code).toBe(3)
    expect(JSON.parse(j.stdout)).toMatchObject({ name, locked: false })
    expect(j.stderr).toContain(`--scope machine --dir ${dir}\n`)

    // Given a key the holder does not have: the unkeyed machine-scope lock and the keyed one.
    const k = await cli('status', name, '--dir', dir, '--key', path.join(dir, 'other.db'))
    expect(k.code).toBe(3)
    expect(k.stderr).toContain(`instance-lock status ${name} --scope machine --dir ${dir}\n`)
    expect(k.stderr).toContain(`instance-lock status ${name} --key ${fs.realpathSync(keyFile)} --dir ${dir}\n`)

    // Held exactly as asked: no hints.
    const held = await cli('status', name, '--dir', dir, '--scope', 'machine')
    expect(held.code).toBe(0)
    expect(held.stderr).toBe('')
  })
})

describe.skipIf(process.platform !== 'linux')('stop', () => {
  it('stops the verified holder: exit 0 once the lock is free; 0 when nothing held it', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const none = await cli('stop', name, '--dir', dir)
    expect(none.code).toBe(0)
    expect(none.stdout).toMatch(/not held; nothing to stop/)
    expect(none.stderr).toBe('')

    const holder = await startHolder(name, { dir }, 'hold')
    const r = await cli('stop', name, '--dir', dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`pid ${holder.pid}`)
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGTERM' })
    tryLock(name, { dir }).release()
  })

  it('a missing --scope or --key, or a typo in NAME, is not a silent success: stderr names the held lock and how to reach it', async () => {
    const dir = tmpDir()
    const name = uniqueName('dbd')
    const machine = await startHolder(name, { dir, scope: 'machine' }, 'hold')

    // The wrong key: exit 0 (that lock is free), but the held one is named.
    const r = await cli('stop', name, '--dir', dir, '--key', 'data/a.db')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/not held; nothing to stop/)
    expect(r.stderr).toContain(`instance-lock stop ${name} --scope machine --dir ${dir}\n`)

    // A typo: the held names a small edit away are suggested.
    const typo = await cli('stop', `${name}x`, '--dir', dir)
    expect(typo.code).toBe(0)
    expect(typo.stderr).toContain(`instance-lock stop ${name} --scope machine --dir ${dir}\n`)
    const far = await cli('stop', `${name}xyz`, '--dir', dir)
    expect(far.code).toBe(0)
    expect(far.stderr).toBe('')
    // A name of its own (a lock file exists, free) is not taken for a typo.
    tryLock(`${name}x`, { dir }).release()
    expect((await cli('stop', `${name}x`, '--dir', dir)).stderr).toBe('')

    // Held with a key (only its hash is in the file name; the record has it), stopped without one.
    const keyed = uniqueName()
    const keyFile = path.join(dir, 'db.sqlite')
    fs.writeFileSync(keyFile, '')
    const k = await startHolder(keyed, { dir, key: keyFile }, 'hold')
    const noKey = await cli('stop', keyed, '--dir', dir)
    expect(noKey.code).toBe(0)
    expect(noKey.stderr).toContain(`instance-lock stop ${keyed} --key ${fs.realpathSync(keyFile)} --dir ${dir}\n`)
    // and a keyless holder stopped with a key it does not have.
    const plain = await startHolder(keyed, { dir }, 'hold')
    const withKey = await cli('stop', keyed, '--dir', dir, '--key', 'nope')
    expect(withKey.stderr).toContain(`instance-lock stop ${keyed} --dir ${dir}\n`)

    // Nobody was signalled by any of it.
    for (const f of [machine, k, plain]) expect(hasExited(f.pid)).toBe(false)
    expect((await cli('stop', name, '--dir', dir, '--scope', 'machine')).code).toBe(0)
    expect(await machine.exited).toEqual({ code: null, signal: 'SIGTERM' })
  })

  it('never signals the pid in a stale record: the process named there lives on', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const bystander = await startHolder(uniqueName(), {}, 'bystander')
    const file = tryLock(name, { dir })
    file.release()
    forgeRecord(file.path, name, bystander.pid)
    const r = await cli('stop', name, '--dir', dir, '--force', '--timeout', '0')
    expect(r.code).toBe(0)
    expect(await signalsSeen(bystander)).toEqual([])

    // Held by someone else while the record still names the bystander.
    const holder = await startHolder(name, { dir }, 'hold')
    forgeRecord(holder.path!, name, bystander.pid)
    const s = await cli('stop', name, '--dir', dir, '--signal', 'INT')
    expect(s.code).toBe(0)
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGINT' })
    expect(await signalsSeen(bystander)).toEqual([])
  })

  it('a holder that ignores SIGTERM: exit 1 after --timeout; --force kills it, exit 0', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'stubborn')
    const r = await cli('stop', name, '--dir', dir, '--timeout', '1000')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`still held by pid ${holder.pid}`)
    expect(r.stderr).toContain('--force')
    expect(inspect(name, { dir }).locked).toBe(true)

    const f = await cli('stop', name, '--dir', dir, '--timeout', '1000', '--force')
    expect(f.code).toBe(0)
    expect(f.stdout).toMatch(/killed \(SIGKILL\)/)
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' })
  })

  it('--signal takes a name with or without SIG, or a number', async () => {
    const dir = tmpDir()
    for (const [arg, signal] of [
      ['USR2', 'SIGUSR2'],
      ['sighup', 'SIGHUP'],
      ['2', 'SIGINT'],
    ]) {
      const name = uniqueName()
      const holder = await startHolder(name, { dir }, 'hold')
      expect((await cli('stop', name, '--dir', dir, '--signal', arg!)).code).toBe(0)
      expect((await holder.exited).signal).toBe(signal)
    }
  })
})

describe.skipIf(process.platform !== 'linux')('run', () => {
  it('runs COMMAND holding the lock, shows instance-lock and COMMAND as holder, exits with its code', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const run = new Cli(['run', name, '--dir', dir, '--', node, COMMAND, 'hold', '7'])
    await run.commandPid()
    expect(inspect(name, { dir }).holder?.pid).toBe(run.pid)
    expect(inspect(name, { dir }).holder?.data?.command).toMatch(/command\.cjs hold 7$/)
    if (hasFlock) expect(flockSays(inspect(name, { dir }).path)).toBe('held')
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    const status = await cli('status', name, '--dir', dir)
    expect(status.stdout).toContain(`pid ${run.pid} `)
    expect(status.stdout).toContain('command.cjs hold 7')

    run.endInput()
    const r = await run.result()
    expect(r.code).toBe(7)
    tryLock(name, { dir }).release()
  })

  it('exits 128 + the signal number when COMMAND is killed by a signal', async () => {
    const dir = tmpDir()
    expect((await cli('run', uniqueName(), '--dir', dir, '--', node, COMMAND, 'kill', 'SIGKILL')).code).toBe(137)
    expect((await cli('run', uniqueName(), '--dir', dir, '--', node, COMMAND, 'kill', 'SIGTERM')).code).toBe(143)
  })

  it('held elsewhere: prints the holder, exits 1 (or --conflict-exit-code) without running COMMAND', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'hold')
    const marker = path.join(dir, 'ran')
    const r = await cli('run', name, '--dir', dir, '--', node, COMMAND, 'touch', marker)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`pid ${holder.pid}`)
    expect(r.stderr).toContain(`instance-lock stop ${name} --dir ${dir}`)
    expect(r.stderr).toContain('--wait')
    expect(fs.existsSync(marker)).toBe(false)
    const c = await cli('run', name, '--dir', dir, '--conflict-exit-code', '75', '--', node, COMMAND, 'touch', marker)
    expect(c.code).toBe(75)
    expect(fs.existsSync(marker)).toBe(false)
    // COMMAND's own failure is not a conflict.
    expect((await cli('run', uniqueName(), '--dir', dir, '--conflict-exit-code', '75', '--', node, '-e', 'process.exit(1)')).code).toBe(1)
  })

  it('--wait=MS gives up with the conflict exit code; --wait runs COMMAND once the lock is free', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'hold')
    const marker = path.join(dir, 'ran')
    const t0 = Date.now()
    const r = await cli('run', name, '--dir', dir, '--wait=1000', '--conflict-exit-code', '9', '--', node, COMMAND, 'touch', marker)
    expect(r.code).toBe(9)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    expect(fs.existsSync(marker)).toBe(false)

    const run = new Cli(['run', name, '--dir', dir, '--wait', '--', node, COMMAND, 'touch', marker])
    // The waiter has the lock file open once it waits.
    await expect
      .poll(
        () =>
          fs.readdirSync(`/proc/${run.pid}/fd`).some((fd) => {
            try {
              return fs.readlinkSync(`/proc/${run.pid}/fd/${fd}`) === holder.path
            } catch {
              return false
            }
          }),
        { timeout: 10_000 },
      )
      .toBe(true)
    expect(fs.existsSync(marker)).toBe(false)
    holder.proc.kill('SIGKILL')
    expect((await run.result()).code).toBe(0)
    expect(fs.existsSync(marker)).toBe(true)
  })

  it('--replace stops the holder first (SIGTERM, then SIGKILL after --timeout) and runs COMMAND', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const polite = await startHolder(name, { dir }, 'hold')
    const run = new Cli(['run', name, '--dir', dir, '--replace', '--', node, COMMAND, 'hold'])
    await run.commandPid()
    expect(await polite.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(inspect(name, { dir }).holder?.pid).toBe(run.pid)

    const second = new Cli(['run', name, '--dir', dir, '--replace', '--timeout', '1000', '--', node, COMMAND, 'hold'])
    // The first run's wrapper passes SIGTERM on to its COMMAND, which exits.
    expect((await run.result()).code).toBe(128 + 15)
    await second.commandPid()
    second.endInput()
    expect((await second.result()).code).toBe(0)

    const stubborn = await startHolder(name, { dir }, 'stubborn')
    const third = await cli('run', name, '--dir', dir, '--replace', '--timeout', '1000', '--', node, '-e', '0')
    expect(third.code).toBe(0)
    expect(await stubborn.exited).toEqual({ code: null, signal: 'SIGKILL' })
  })

  it('COMMAND inherits the lock: killing instance-lock with SIGKILL leaves it held until COMMAND exits', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const run = new Cli(['run', name, '--dir', dir, '--', node, COMMAND, 'hold'])
    const pid = await run.commandPid()
    run.proc.kill('SIGKILL')
    await run.exited
    expect(hasExited(pid)).toBe(false)
    expect(inspect(name, { dir })).toMatchObject({ locked: true, holder: { pid } })
    if (hasFlock) expect(flockSays(inspect(name, { dir }).path)).toBe('held')
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))

    run.endInput()
    const l = await lock(name, { dir, timeout: 10_000 })
    await expect.poll(() => hasExited(pid), { timeout: 10_000 }).toBe(true)
    l.release()
  })

  it('a process COMMAND passed the descriptor on to holds the lock after COMMAND and instance-lock exit', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    // sh leaves a sleep running in the background, with fd 3, and exits.
    const r = await cli('run', name, '--dir', dir, '--', 'sh', '-c', 'sleep 60 </dev/null >/dev/null 2>&1 & echo $!')
    expect(r.code).toBe(0)
    const pid = Number(r.stdout.trim())
    try {
      expect(inspect(name, { dir }).locked).toBe(true)
      expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    } finally {
      process.kill(pid, 'SIGKILL')
    }
    await expect.poll(() => hasExited(pid), { timeout: 10_000 }).toBe(true)
    tryLock(name, { dir }).release()
  })

  it('stop finds COMMAND once instance-lock is gone, and a stubborn COMMAND is killed with --force', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const orphan = new Cli(['run', name, '--dir', dir, '--', node, COMMAND, 'hold'])
    const pid = await orphan.commandPid()
    orphan.proc.kill('SIGKILL')
    await orphan.exited
    const r = await cli('stop', name, '--dir', dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`pid ${pid}`)
    await expect.poll(() => hasExited(pid), { timeout: 10_000 }).toBe(true)

    // The wrapper forwards SIGTERM, COMMAND ignores it; --force kills the
    // wrapper and then COMMAND, which holds the lock after it.
    const run = new Cli(['run', name, '--dir', dir, '--', node, COMMAND, 'stubborn'])
    const stubborn = await run.commandPid()
    expect(inspect(name, { dir }).holder?.pid).toBe(run.pid)
    const f = await cli('stop', name, '--dir', dir, '--timeout', '1000', '--force')
    expect(f.code).toBe(0)
    expect(run.stdout).toContain('ignored SIGTERM')
    expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' })
    await expect.poll(() => hasExited(stubborn), { timeout: 10_000 }).toBe(true)
    tryLock(name, { dir }).release()
  })

  it('passes SIGINT, SIGTERM and SIGHUP on to COMMAND', async () => {
    const dir = tmpDir()
    for (const [signal, number] of [
      ['SIGINT', 2],
      ['SIGTERM', 15],
      ['SIGHUP', 1],
    ] as const) {
      // COMMAND handles it: says so and exits 0, and so does instance-lock.
      const handled = new Cli(['run', uniqueName(), '--dir', dir, '--', node, COMMAND, 'report'])
      await handled.commandPid()
      handled.proc.kill(signal)
      const h = await handled.result()
      expect(h.stdout).toContain(`got ${signal}`)
      expect(h.code).toBe(0)

      // COMMAND dies of it: instance-lock exits 128 + its number.
      const killed = new Cli(['run', uniqueName(), '--dir', dir, '--', node, COMMAND, 'hold'])
      const pid = await killed.commandPid()
      killed.proc.kill(signal)
      expect((await killed.result()).code).toBe(128 + number)
      await expect.poll(() => hasExited(pid), { timeout: 10_000 }).toBe(true)
    }
  })

  it('COMMAND not found: 127, and the lock is not left held', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const r = await cli('run', name, '--dir', dir, '--', path.join(dir, 'no-such-program'))
    expect(r.code).toBe(127)
    expect(r.stderr).toMatch(/cannot run/)
    tryLock(name, { dir }).release()
  })
})
