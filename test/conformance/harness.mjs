// What the conformance scenarios (scenarios.mjs) run on: the package under
// test, child processes driven over IPC (child.cjs), assertions, and the
// runner. Plain Node, no test framework, so it runs where only a bare node
// binary runs: node.exe under Wine, whose standard streams must be files.
//
// IL_ROOT is the package root (default: this repository); under Wine it is a
// staged package holding the win32 prebuild. Which addon loads is the
// package's choice, so INSTANCE_LOCK_PREBUILD selects another build (the
// portable one). Children are forked with this same node binary and
// environment, and so load the same addon and share a Wine prefix.
// IL_BACKEND=postgres (with IL_POSTGRES_URL) drives the PostgreSQL backend
// instead, in this process and the children (backend.cjs).
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const here = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = process.env.IL_ROOT ?? path.resolve(here, '..', '..')
const requireHere = createRequire(import.meta.url)
const backend = requireHere('./backend.cjs').load(ROOT)
export const il = backend.il
export const WIN = process.platform === 'win32'
export const work = fs.mkdtempSync(path.join(os.tmpdir(), 'il-conformance-'))

/**
 * What the backend under test can do: backend.cjs's capabilities and, for
 * the local backend, what the loaded addon says (the same module the package
 * loaded: node-gyp-build picks the same file, and Node loads a file once).
 * Windows proves holders by the mutex's owner; flock proves them from /proc
 * on Linux only, and waits in the kernel on threads of the addon's own only
 * there. PostgreSQL proves them by the server's lock table, and waits on the
 * server.
 */
export const BACKEND = (() => {
  if (backend.kind === 'postgres') return { ...backend, name: 'PostgreSQL', provesHolders: true, blockingWaits: true }
  if (WIN) return { ...backend, name: 'win32 named mutexes', provesHolders: true, blockingWaits: true }
  const addon = createRequire(path.join(ROOT, 'package.json'))('node-gyp-build')(ROOT)
  const provesHolders = addon.PROVES_HOLDERS === true
  const blockingWaits = typeof addon.waitInit === 'function'
  return { ...backend, name: provesHolders ? 'flock (Linux)' : 'flock (portable)', provesHolders, blockingWaits }
})()

/** Releases `lock`; resolves once another process can take it. */
export const released = (lock) => backend.released(lock)

/** Resolves once `count` waits for the lock `n` are queued (see backend.cjs). */
export const queued = (n, count) => backend.queued(n, count)

/**
 * Takes `n`, whose holder was killed: the kernel frees a lock as its
 * holder's process ends, a server once it sees the connection close (on a
 * live host within 1 s, the API says; waited for generously here).
 */
export function takeFreed(n) {
  return BACKEND.freedAtExit ? il.tryLock(n) : il.lock(n, { timeout: 10_000 })
}

const SCENARIO_LIMIT = 120_000
const live = new Set()

export function name(prefix) {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`
}

export function check(cond, what) {
  if (!cond) throw new Error(what)
}

export function eq(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

export function throws(fn, code, what) {
  try {
    fn()
  } catch (err) {
    eq(err.code, code, `${what} code`)
    return err
  }
  throw new Error(`${what}: did not throw`)
}

export async function rejects(p, what) {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error(`${what}: did not reject`)
}

/** The error `fn` throws or its promise rejects with (the API allows either for lock and stop). */
export async function fails(fn, what) {
  let p
  try {
    p = fn()
  } catch (err) {
    return err
  }
  return rejects(p, what)
}

/**
 * The error a call fails with, with `code`: thrown in the call where the
 * backend answers synchronously (the local tryLock, inspect and list must),
 * thrown or rejected elsewhere.
 */
export async function refused(fn, code, what) {
  if (BACKEND.sync) return throws(fn, code, what)
  const err = await fails(fn, what)
  eq(err.code, code, `${what} code`)
  return err
}

/** `p`, or an error if it has not settled within a generous `ms`. */
export async function within(p, ms, what) {
  let timer
  try {
    return await Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * fork(), tried again when it throws UNKNOWN: under Wine, on a loaded
 * machine, creating a process now and then fails that way before the child
 * exists (seen once in many runs). Any other failure, or three in a row,
 * is an error.
 */
export function forkChild(env = {}, stdio = ['ignore', 'inherit', 'inherit', 'ipc']) {
  for (let attempt = 1; ; attempt++) {
    try {
      return fork(path.join(here, 'child.cjs'), [], { stdio, env: { ...process.env, IL_ROOT: ROOT, ...env } })
    } catch (err) {
      if (err.code !== 'UNKNOWN' || attempt === 3) throw err
    }
  }
}

export class Child {
  constructor(env = {}) {
    this.proc = forkChild(env)
    live.add(this)
    this.next = 0
    this.pending = new Map()
    this.listeners = new Map()
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })))
    this.ready = new Promise((resolve, reject) => {
      this.proc.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)))
      this.proc.on('message', (m) => {
        if (m.ready) resolve(this)
        else if (m.event !== undefined) this.listeners.get(m.event)?.(m)
        else {
          const p = this.pending.get(m.id)
          if (p === undefined) return
          this.pending.delete(m.id)
          if (m.ok) p.resolve(m.result)
          else p.reject(Object.assign(new Error(m.error.message), m.error))
        }
      })
    })
    void this.exited.then(() => {
      live.delete(this)
      for (const p of this.pending.values()) p.reject(new Error('child exited'))
      this.pending.clear()
    })
  }

  get pid() {
    return this.proc.pid
  }

  call(op, ...args) {
    return this.#send(op, args, false)
  }

  /** Then the child's IPC channel no longer keeps it alive. */
  callAndDetach(op, ...args) {
    return this.#send(op, args, true)
  }

  #send(op, args, detach) {
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.proc.send({ id, op, args, detach })
    })
  }

  /** The error the call failed with in the child; rejects if it succeeded. */
  async fails(op, ...args) {
    return rejects(this.call(op, ...args), `${op} in the child`)
  }

  /** The next message the child sends with `event: tag`. */
  event(tag) {
    return new Promise((resolve) => this.listeners.set(tag, resolve))
  }

  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
    await this.exited
  }
}

export async function children(n, env) {
  return Promise.all(Array.from({ length: n }, () => new Child(env).ready))
}

const scenarios = []
export const metrics = []

/** Registers a scenario; `applies` false leaves it out on this backend. */
export function scenario(title, fn, applies = true) {
  if (applies) scenarios.push({ title, fn })
}

/**
 * Runs the scenarios whose title contains `filter` (all without), one at a
 * time, each with a generous limit; kills what a scenario left running.
 * Prints the backend, one line per scenario, the metrics, and last
 * `N passed, N failed`; sets the exit code.
 */
export async function run(filter) {
  let passed = 0
  let failed = 0
  const started = Date.now()
  console.log(`# backend: ${BACKEND.name}, proves holders: ${BACKEND.provesHolders ? 'yes' : 'no'}, blocking waits: ${BACKEND.blockingWaits ? 'yes' : 'no'}`)
  for (const s of scenarios) {
    if (filter !== undefined && !s.title.includes(filter)) continue
    const t0 = Date.now()
    let timer
    try {
      await Promise.race([
        s.fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result after ${SCENARIO_LIMIT} ms`)), SCENARIO_LIMIT)
        }),
      ])
      passed++
      console.log(`ok - ${s.title} (${Date.now() - t0} ms)`)
    } catch (err) {
      failed++
      console.log(`not ok - ${s.title}: ${err && err.stack ? err.stack : err}`)
    } finally {
      clearTimeout(timer)
      await Promise.all([...live].map((c) => c.kill()))
    }
  }
  await within(backend.close(), 30_000, 'the backend closing its connections')
  for (const m of metrics) console.log(`# ${m}`)
  console.log(`# node ${process.version} ${process.platform}-${process.arch}, ${Date.now() - started} ms`)
  fs.rmSync(work, { recursive: true, force: true })
  console.log(`${passed} passed, ${failed} failed`)
  process.exitCode = failed === 0 ? 0 : 1
}
