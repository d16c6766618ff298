import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, afterEach } from 'vitest'
import { OPEN_TMP } from './open-dir.js'

export const ROOT = path.resolve(__dirname, '..')
export const FIXTURES = path.join(__dirname, 'fixtures')

const cleanups: Array<() => void> = []
afterEach(() => {
  while (cleanups.length > 0) {
    try {
      cleanups.pop()!()
    } catch {
      // best effort
    }
  }
})

/** A fresh directory for one test, removed afterwards. */
export function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'il-test-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A lock name no other test (or earlier run) uses. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`
}

export interface RemoteError {
  name: string
  code: string
  message: string
  holder?: { pid: number; data?: Record<string, unknown> }
}

/** A child process driven over IPC (see conformance/child.cjs). */
export class Child {
  readonly proc: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #next = 0
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>()

  constructor(proc: ChildProcess) {
    this.proc = proc
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
    proc.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: RemoteError }) => {
      if (m.id === undefined) return
      const p = this.#pending.get(m.id)
      if (p === undefined) return
      this.#pending.delete(m.id)
      if (m.ok) p.resolve(m.result)
      else p.reject(Object.assign(new Error(m.error!.message), m.error))
    })
    void this.exited.then(() => {
      for (const p of this.#pending.values()) p.reject(new Error('child exited'))
      this.#pending.clear()
    })
  }

  get pid(): number {
    return this.proc.pid!
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.proc.send({ id, op, args })
    })
  }

  /** Resolves with the error the call failed with; rejects if it succeeded. */
  async fails(op: string, ...args: unknown[]): Promise<RemoteError> {
    try {
      await this.call(op, ...args)
    } catch (err) {
      return err as RemoteError
    }
    throw new Error(`${op} succeeded in the child but was expected to fail`)
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal)
    await this.exited
  }
}

// The same IPC child serves these tests and the conformance scenarios (run
// under Wine); it loads the built package from IL_ROOT, as a user would.
const CHILD = path.join(__dirname, 'conformance', 'child.cjs')

/** Starts a child process and waits until it is ready. */
export async function spawnChild(): Promise<Child> {
  const proc = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, IL_ROOT: ROOT } })
  return ready(proc, 'child')
}

/** Starts a child process as another user (root only; util-linux setpriv); see `OTHER_USERS`. */
export async function spawnChildAs(uid: number): Promise<Child> {
  const copy = copyForOthers()
  const proc = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, copy.child], {
    cwd: copy.dir,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, IL_ROOT: copy.root },
  })
  return ready(proc, `child as uid ${uid}`)
}

export const isRoot = process.getuid?.() === 0

/**
 * Why tests that run a child as another user (root switching to uid
 * 65534…) cannot run here, or undefined when they can. Printed once when
 * they are skipped.
 */
export const OTHER_USERS: string | undefined = !isRoot
  ? 'needs root, to run children as other users'
  : OPEN_TMP === undefined
    ? 'no temporary directory every user can enter, for the copy of the package other users load'
    : undefined
if (OTHER_USERS !== undefined) console.warn(`skipping the tests as another user: ${OTHER_USERS}`)

let forOthers: { dir: string; root: string; child: string } | undefined
afterAll(() => {
  if (forOthers !== undefined) fs.rmSync(forOthers.dir, { recursive: true, force: true })
  forOthers = undefined
})

/**
 * What a child of another user loads, copied once per test file into a
 * fresh directory every user can read: the built package (dist/, its addon
 * from build/Release or prebuilds/, node-gyp-build) and the IPC child.
 */
export function copyForOthers(): { dir: string; root: string; child: string } {
  if (forOthers !== undefined) return forOthers
  if (OTHER_USERS !== undefined) throw new Error(`cannot run a child as another user: ${OTHER_USERS}`)
  const dir = fs.mkdtempSync(path.join(OPEN_TMP!, 'il-others-'))
  const root = path.join(dir, 'instance-lock')
  const copy = (from: string, to = from) => {
    if (!fs.existsSync(path.join(ROOT, from))) return
    fs.mkdirSync(path.dirname(path.join(root, to)), { recursive: true })
    fs.cpSync(path.join(ROOT, from), path.join(root, to), { recursive: true, dereference: true })
  }
  copy('package.json')
  copy('dist')
  const addon = path.join(ROOT, 'build', 'Release', 'instance_lock.node')
  if (fs.existsSync(addon)) copy('build/Release/instance_lock.node')
  else copy('prebuilds')
  copy('node_modules/node-gyp-build')
  const child = path.join(dir, 'child.cjs')
  fs.copyFileSync(CHILD, child)
  // What the child loads the package through.
  fs.copyFileSync(path.join(path.dirname(CHILD), 'backend.cjs'), path.join(dir, 'backend.cjs'))
  openToAll(dir)
  return (forOthers = { dir, root, child })
}

/** Every user may read `p` (and enter it, and run what is executable). */
function openToAll(p: string): void {
  const st = fs.lstatSync(p)
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755)
    for (const n of fs.readdirSync(p)) openToAll(path.join(p, n))
  } else if (st.isFile()) fs.chmodSync(p, st.mode & 0o100 ? 0o755 : 0o644)
}

async function ready(proc: ChildProcess, what: string): Promise<Child> {
  const child = new Child(proc)
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    proc.once('message', () => resolve())
    proc.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)))
  })
  return child
}

/**
 * Resolves once `check()` is true, looking again after every turn of the
 * event loop (not a sleep: it waits for what the loop delivers); rejects
 * after a generous `limitMs`.
 */
export async function eventually(check: () => boolean, what: string, limitMs = 5000): Promise<void> {
  const end = Date.now() + limitMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${limitMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

/**
 * The Node built-in modules that `script` makes a fresh process load, by id
 * (`os`, `internal/modules/esm/resolve`…), for start-up costs a test must
 * keep away. The script runs from a file (`node -e` loads some modules
 * itself) in a project whose node_modules/instance-lock is this checkout, so
 * it requires the package by name as a user does; `args` are its
 * `process.argv.slice(2)`.
 */
export function builtinsLoadedBy(script: string, ...args: string[]): string[] {
  const project = tmpDir()
  fs.mkdirSync(path.join(project, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'instance-lock'), 'junction')
  const file = path.join(project, 'script.cjs')
  fs.writeFileSync(file, `${script}\nconsole.log(JSON.stringify(process.moduleLoadList))\n`)
  const out = execFileSync(process.execPath, [file, ...args], { cwd: project, encoding: 'utf8' })
  const list = JSON.parse(out.trim().split('\n').pop()!) as string[]
  return list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
}
