// Processes for the stop / replace / run tests: holders, bystanders and
// replacers over IPC (fixtures/holder.cjs, fixtures/replacer.cjs), and the
// instance-lock command line with its output read line by line.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, expect } from 'vitest'
import { FIXTURES, ROOT, tmpDir } from './helpers.js'

export const BIN = path.join(ROOT, 'bin', 'instance-lock.js')
export const COMMAND = path.join(FIXTURES, 'command.cjs')

const pids = new Set<number>()
const fds = new Set<number>()
afterEach(() => {
  for (const fd of fds) fs.closeSync(fd)
  fds.clear()
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  pids.clear()
})

/** Kills `pid` after the test if it is still there (orphans such as run's COMMAND). */
export function track(pid: number): void {
  pids.add(pid)
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Fixture {
  proc: ChildProcess
  pid: number
  path?: string
  exited: Promise<Exit>
}

function exitOf(proc: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
}

/** fixtures/holder.cjs in `mode`; resolves once it holds the lock (or, as a bystander, is listening). */
export async function startHolder(name: string, options: object, mode: 'hold' | 'stubborn' | 'bystander' | 'usurper'): Promise<Fixture> {
  const proc = fork(path.join(FIXTURES, 'holder.cjs'), [name, JSON.stringify(options), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  track(proc.pid!)
  const exited = exitOf(proc)
  const first = await new Promise<{ pid: number; path?: string }>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as { pid: number; path?: string }))
    void exited.then((e) => reject(new Error(`holder.cjs ${mode} exited early: ${JSON.stringify(e)}`)))
  })
  return { proc, pid: first.pid, ...(first.path === undefined ? {} : { path: first.path }), exited }
}

/**
 * The catchable signals a holder.cjs process has received. Signals are
 * handled on a later turn of its event loop than the one that reads IPC, so
 * the question is asked twice: the second answer comes after any signal sent
 * before the first question was handled.
 */
export async function signalsSeen(f: Fixture): Promise<string[]> {
  let seen: string[] = []
  for (let i = 0; i < 2; i++) {
    seen = await new Promise<string[]>((resolve) => {
      f.proc.once('message', (m) => resolve((m as { seen: string[] }).seen))
      f.proc.send('count')
    })
  }
  return seen
}

/**
 * Once the stubborn holder `old` has seen a stopper's SIGTERM, another
 * program takes the lock in its place with a copy of its record (holder.cjs
 * `usurper`): a newcomer that the record cannot tell from the old instance.
 */
export async function usurpOnceSignalled(name: string, options: object, old: Fixture): Promise<Fixture> {
  await expect.poll(() => signalsSeen(old), { timeout: 10_000 }).toEqual(['SIGTERM'])
  const newcomer = await startHolder(name, options, 'usurper')
  expect(fs.readFileSync(newcomer.path!, 'utf8')).toContain(`"pid":${old.pid},`)
  return newcomer
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Linux: `pid` has exited (gone, or a zombie that its new parent has not reaped yet). */
export function hasExited(pid: number): boolean {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return true
  }
  return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))
}

function fnv1a(buf: Buffer): number {
  let h = 0x811c9dc5
  for (const b of buf) h = Math.imul(h ^ b, 0x01000193) >>> 0
  return h
}

/** Writes a well-formed holder record naming `pid` into a lock file, as a crashed holder or a hostile user could leave it. */
export function forgeRecord(file: string, name: string, pid: number, startedAt = new Date()): void {
  const json = Buffer.from(JSON.stringify({ pid, hostname: os.hostname(), startedAt: startedAt.toISOString(), name, scope: 'user' }))
  const hex = (n: number): string => n.toString(16).padStart(8, '0')
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, Buffer.concat([Buffer.from(`IL1 ${hex(json.length)} ${hex(fnv1a(json))}\n`), json]), 0, undefined, 0)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * A running `instance-lock` command, its output read as it comes. Its stdin
 * (which `run` passes on to COMMAND) is a FIFO that only `endInput()` ends:
 * a pipe from Node would be closed as soon as instance-lock itself exits,
 * and the tests kill it while COMMAND runs on.
 */
export class Cli {
  readonly proc: ChildProcess
  readonly exited: Promise<Exit>
  stdout = ''
  stderr = ''
  #waiters: Array<() => void> = []
  #input: number

  constructor(args: string[]) {
    const fifo = path.join(tmpDir(), 'stdin')
    execFileSync('mkfifo', [fifo])
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    this.#input = fs.openSync(fifo, fs.constants.O_WRONLY)
    fds.add(this.#input)
    try {
      this.proc = spawn(process.execPath, [BIN, ...args], { stdio: [reader, 'pipe', 'pipe'] })
    } finally {
      fs.closeSync(reader)
    }
    track(this.proc.pid!)
    this.exited = exitOf(this.proc)
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s
      for (const w of this.#waiters.splice(0)) w()
    })
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s))
  }

  get pid(): number {
    return this.proc.pid!
  }

  /** Resolves with the first stdout line that matches, rejecting if the command exits first. */
  async line(re: RegExp): Promise<RegExpMatchArray> {
    let exited = false
    void this.exited.then(() => {
      exited = true
      for (const w of this.#waiters.splice(0)) w()
    })
    for (;;) {
      for (const l of this.stdout.split('\n')) {
        const m = re.exec(l)
        if (m !== null) return m
      }
      if (exited) throw new Error(`instance-lock exited before printing ${re}: ${this.stdout}${this.stderr}`)
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  /** `run`'s COMMAND reports "ready <pid>" first (fixtures/command.cjs). */
  async commandPid(): Promise<number> {
    const pid = Number((await this.line(/^ready (\d+)$/))[1])
    track(pid)
    return pid
  }

  /** Ends stdin, which `run`'s COMMAND inherits (fixtures/command.cjs hold ends with it). */
  endInput(): void {
    if (!fds.delete(this.#input)) return
    fs.closeSync(this.#input)
  }

  async result(): Promise<Exit & { stdout: string; stderr: string }> {
    const e = await this.exited
    // 'exit' can come before the last output is read; the pipes' end cannot.
    await Promise.all([this.proc.stdout!, this.proc.stderr!].filter((s) => !s.readableEnded).map((s) => new Promise((r) => s.once('end', r))))
    return { ...e, stdout: this.stdout, stderr: this.stderr }
  }
}

/** Runs `instance-lock ARGS` to the end, with stdin closed. */
export function cli(...args: string[]): Promise<Exit & { stdout: string; stderr: string }> {
  const c = new Cli(args)
  c.endInput()
  return c.result()
}
