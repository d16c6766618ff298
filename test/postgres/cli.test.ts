import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, servers, uniqueName } from './helpers.js'

const BIN = join(__dirname, '..', '..', 'bin', 'instance-lock.js')

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/** `instance-lock run` whose COMMAND says "started" and waits to be signalled. */
function runHolder(args: string[]): { child: ChildProcess; started: Promise<void>; exit: Promise<Result> } {
  const child = spawn(process.execPath, [BIN, 'run', ...args, '--', process.execPath, '-e', "console.log('started'); setInterval(() => {}, 1000)"])
  let stdout = ''
  let stderr = ''
  let onStarted: () => void
  const started = new Promise<void>((r) => (onStarted = r))
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (stdout.includes('started')) onStarted()
  })
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exit = new Promise<Result>((resolve) => child.on('exit', (code, signal) => resolve({ code: code ?? (signal === null ? null : -1), stdout, stderr })))
  return { child, started, exit }
}

describe.each(servers)('instance-lock --postgres ($name server)', (server) => {
  let c: pg.Client
  const children: ChildProcess[] = []
  beforeAll(async () => {
    c = await admin(server.url)
  })
  afterAll(async () => {
    for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL')
    await c.end()
  })

  it('status, run and stop, with --postgres or INSTANCE_LOCK_POSTGRES', async () => {
    const name = uniqueName('cli')
    expect((await cli(['status', name, '--postgres', server.url])).code).toBe(3)

    const h = runHolder([name, '--postgres', server.url, '--key', 'k1', '--data', '{"port":5858}', '--ready'])
    children.push(h.child)
    await h.started
    const st = await cli(['status', name, '--key', 'k1', '--json'], { INSTANCE_LOCK_POSTGRES: server.url })
    expect(st.code).toBe(0)
    const status = JSON.parse(st.stdout) as { locked: boolean; scope: string; holder: { pid: number; data: { port: number } } }
    expect(status).toMatchObject({ locked: true, scope: 'cluster', holder: { pid: h.child.pid, data: { port: 5858 } } })

    // Held: a second run does not run its COMMAND, and exits with the conflict code.
    const second = await cli(['run', name, '--key', 'k1', '--postgres', server.url, '--conflict-exit-code', '7', '--', process.execPath, '-e', 'process.exit(0)'])
    expect(second.code).toBe(7)

    // stop: the run process hears the request over the database and passes SIGTERM on to COMMAND.
    const stopped = await cli(['stop', name, '--key', 'k1', '--postgres', server.url])
    expect(stopped.code).toBe(0)
    expect((await h.exit).code).toBe(128 + 15)
    expect((await cli(['status', name, '--key', 'k1', '--postgres', server.url])).code).toBe(3)
    expect((await cli(['stop', name, '--postgres', server.url])).code).toBe(0)
  })

  it('run: a lost lock stops COMMAND and exits 1 with a message', async () => {
    const name = uniqueName('clilost')
    const h = runHolder([name, '--postgres', server.url])
    children.push(h.child)
    await h.started
    const st = JSON.parse((await cli(['status', name, '--json', '--postgres', server.url])).stdout) as { holder: { backendPid: number } }
    await c.query('SELECT pg_terminate_backend($1)', [st.holder.backendPid])
    const r = await h.exit
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(name)
  })

  it('bad usage exits 2', async () => {
    for (const args of [
      ['status', '--postgres', server.url, '--scope', 'machine'],
      ['stop', '--postgres', server.url],
      ['stop', 'x', '--postgres', server.url, '--timeout', 'soon'],
      ['run', 'x', '--postgres', server.url],
      ['status', 'a/b', '--postgres', server.url],
      ['status', 'x', '--postgres', 'http://nope'],
      ['status', 'x', '--postgres='],
    ]) {
      expect((await cli(args)).code, args.join(' ')).toBe(2)
    }
  })
})
