// The multi-process scenarios of the test suite, in plain Node (no test
// framework), so they run where only a bare node binary runs: node.exe under
// Wine, whose standard streams must be files. Prints one line per scenario
// and a last line `N passed, N failed`; exits 1 if any failed.
//
//   IL_ROOT=<package root> node test/portable/scenarios.mjs [filter]
//
// IL_ROOT defaults to the repository (its native build); under Wine it is a
// staged package holding the win32 prebuild. Children are forked with this
// same node binary, and so share its Wine prefix. Nothing here sleeps to
// synchronise: children report over IPC, and times are only measured or
// bounded by generous limits.
import { fork, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

const here = path.dirname(fileURLToPath(import.meta.url))
const ROOT = process.env.IL_ROOT ?? path.resolve(here, '..', '..')
const il = createRequire(import.meta.url)(ROOT)
const WIN = process.platform === 'win32'
const filter = process.argv[2]
const SCENARIO_LIMIT = 120_000
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'il-portable-'))
const live = new Set()

function name(prefix) {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`
}

function check(cond, what) {
  if (!cond) throw new Error(what)
}

function eq(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

function throws(fn, code, what) {
  try {
    fn()
  } catch (err) {
    eq(err.code, code, `${what} code`)
    return err
  }
  throw new Error(`${what}: did not throw`)
}

async function rejects(p, what) {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error(`${what}: did not reject`)
}

/**
 * fork(), tried again when it throws UNKNOWN: under Wine, on a loaded
 * machine, creating a process now and then fails that way before the child
 * exists (seen once in many runs). Any other failure, or three in a row,
 * is an error.
 */
function forkChild(env) {
  for (let attempt = 1; ; attempt++) {
    try {
      return fork(path.join(here, 'child.cjs'), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, IL_ROOT: ROOT, ...env },
      })
    } catch (err) {
      if (err.code !== 'UNKNOWN' || attempt === 3) throw err
    }
  }
}

class Child {
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

  async fails(op, ...args) {
    return rejects(this.call(op, ...args), `${op} in the child`)
  }

  event(tag) {
    return new Promise((resolve) => this.listeners.set(tag, resolve))
  }

  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
    await this.exited
  }
}

async function children(n, env) {
  return Promise.all(Array.from({ length: n }, () => new Child(env).ready))
}

// ---------------------------------------------------------------------------

const scenarios = []
const metrics = []
function scenario(title, fn, only = true) {
  if (only) scenarios.push({ title, fn })
}

scenario('exclusion in-process: a second tryLock of a held lock fails, lock() waits for the holder', async () => {
  const n = name('inproc')
  const a = il.tryLock(n)
  const err = throws(() => il.tryLock(n), 'ELOCKED', 'second tryLock')
  eq(err.name, 'LockedError', 'error name')
  eq(err.holder?.pid, process.pid, 'holder pid')
  throws(() => il.tryLock(n, { key: undefined }), 'ELOCKED', 'tryLock again')
  await rejects(il.lock(n, { timeout: 0 }), 'lock timeout 0').then((e) => eq(e.code, 'ELOCKED', 'lock timeout 0 code'))
  eq(il.inspect(n).locked, true, 'inspect locked')
  const waiting = il.lock(n, { timeout: 30_000 })
  setTimeout(() => a.release(), 50)
  const b = await waiting
  eq(a.released, true, 'first released')
  throws(() => il.tryLock(n), 'ELOCKED', 'tryLock while the waiter holds it')
  b.release()
  il.tryLock(n).release()
  eq(il.inspect(n).locked, false, 'free at the end')
})

scenario('exclusion across processes: LockedError names the holder pid', async () => {
  const [c] = await children(1)
  const n = name('cross')
  await c.call('tryLock', n, { data: { port: 1234 } })
  const err = throws(() => il.tryLock(n), 'ELOCKED', 'parent tryLock')
  eq(err.holder?.pid, c.pid, 'holder pid')
  eq(err.holder?.data?.port, 1234, 'holder data')
  const s = il.inspect(n)
  eq(s.locked, true, 'inspect locked')
  eq(s.holder?.pid, c.pid, 'inspect holder pid')
  const listed = il.list().find((x) => x.name === n)
  eq(listed?.holder?.pid, c.pid, 'list holder pid')
  await c.call('update', s.path, { port: 4321 })
  eq(il.inspect(n).holder?.data?.port, 4321, 'updated data')
  await c.call('release', s.path)
  const mine = il.tryLock(n)
  const e2 = await c.fails('tryLock', n)
  eq(e2.code, 'ELOCKED', 'child tryLock code')
  eq(e2.holder?.pid, process.pid, 'child sees parent as holder')
  mine.release()
  await c.kill()
})

scenario('start race: of processes released together, exactly one wins, every round', async () => {
  const racers = await children(6)
  const n = name('race')
  for (let round = 0; round < 4; round++) {
    const results = await Promise.all(
      racers.map((c) =>
        c.call('tryLock', n).then(
          () => 'won',
          (e) => e.code,
        ),
      ),
    )
    const winners = results.filter((r) => r === 'won').length
    eq(winners, 1, `winners in round ${round} (${results.join(',')})`)
    check(
      results.every((r) => r === 'won' || r === 'ELOCKED'),
      `round ${round}: ${results.join(',')}`,
    )
    const w = racers[results.indexOf('won')]
    const st = il.inspect(n)
    await w.call('release', st.path)
  }
  await Promise.all(racers.map((c) => c.kill()))
})

scenario('mutual exclusion under stress: critical sections never overlap', async () => {
  const n = name('stress')
  const counter = path.join(work, `${n}.count`)
  const marker = path.join(work, `${n}.inside`)
  fs.writeFileSync(counter, '0')
  const workers = await children(4)
  const per = 40
  const modes = ['wait', 'try', 'wait', 'try']
  const results = await Promise.all(workers.map((c, i) => c.call('stress', n, {}, per, counter, marker, modes[i])))
  const overlaps = results.reduce((s, r) => s + r.overlaps, 0)
  eq(overlaps, 0, 'overlapping critical sections')
  eq(Number(fs.readFileSync(counter, 'utf8')), per * workers.length, 'counter')
  await Promise.all(workers.map((c) => c.kill()))
})

scenario('hard kill of the holder: free at once, the waiter recovers it', async () => {
  const [c] = await children(1)
  const n = name('kill')
  await c.call('tryLock', n)
  const waiting = il.lock(n, { timeout: 30_000 })
  const t0 = Date.now()
  await c.kill()
  const lock = await waiting
  const ms = Date.now() - t0
  metrics.push(`kill→acquired ${ms} ms`)
  if (WIN) eq(lock.recovered, true, 'recovered (WAIT_ABANDONED)')
  lock.release()
  const [d] = await children(1)
  await d.call('tryLock', n)
  await d.kill()
  il.tryLock(n).release()
})

scenario('wait: timeout rejects with the holder, abort rejects with AbortError, neither leaves anything behind', async () => {
  const n = name('giveup')
  const lock = il.tryLock(n)
  const [c] = await children(1)
  const r = await c.callAndDetach('waitThenGiveUp', n, {})
  eq(r.timeout?.code, 'ELOCKED', 'timeout code')
  eq(r.timeout?.holderPid, process.pid, 'timeout holder pid')
  check(r.timeout.ms >= 200, `timed out after ${r.timeout.ms} ms, well before its 300 ms`)
  eq(r.abort?.name, 'AbortError', 'abort error name')
  // Detached, the child ends by itself unless a thread, handle or timer of
  // the settled waits is left.
  let timer
  const exit = await Promise.race([c.exited, new Promise((resolve) => (timer = setTimeout(() => resolve('still running'), 30_000)))])
  clearTimeout(timer)
  eq(exit?.code, 0, 'child exited by itself')
  lock.release()
})

scenario('wait: a pending lock() keeps its process alive and gets the lock when released', async () => {
  const n = name('alive')
  const lock = il.tryLock(n)
  const [c] = await children(1)
  const got = c.event('got')
  await c.callAndDetach('lockLater', n, {}, 'got')
  let exitedEarly = false
  void c.exited.then(() => (exitedEarly = true))
  await new Promise((resolve) => setTimeout(resolve, 500))
  eq(exitedEarly, false, 'child exited while its lock() was pending')
  lock.release()
  const m = await got
  eq(m.ok, true, 'child acquired')
  await c.exited
})

scenario('wait: handoff to a waiting process within milliseconds', async () => {
  const [c] = await children(1)
  const n = name('handoff')
  const times = []
  for (let i = 0; i < 5; i++) {
    const lock = il.tryLock(n)
    const got = c.event(`got${i}`)
    await c.call('lockLater', n, {}, `got${i}`)
    const t0 = Date.now()
    lock.release()
    const m = await got
    eq(m.ok, true, 'child acquired')
    times.push(m.result.t - t0)
    await c.call('release', m.result.path)
  }
  const [c2] = await children(1)
  for (let i = 0; i < 3; i++) {
    const r = await c2.call('tryLock', n)
    const waiting = il.lock(n, { timeout: 30_000 })
    const { t } = await c2.call('release', r.path)
    const lock = await waiting
    times.push(Date.now() - t)
    lock.release()
  }
  times.sort((a, b) => a - b)
  metrics.push(`handoff median ${times[Math.floor(times.length / 2)]} ms, max ${times.at(-1)} ms`)
  check(times.at(-1) < 2_000, `handoff took ${times.at(-1)} ms`)
  await Promise.all([c.kill(), c2.kill()])
})

scenario('singleInstance: the second instance prints the holder and exits with exitCode', async () => {
  const n = name('guard')
  const lock = il.singleInstance(n)
  const errFile = path.join(work, `${n}.stderr`)
  const fd = fs.openSync(errFile, 'w')
  const proc = fork(path.join(here, 'child.cjs'), [], { stdio: ['ignore', 'ignore', fd, 'ipc'], env: { ...process.env, IL_ROOT: ROOT } })
  fs.closeSync(fd)
  const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)))
  await new Promise((resolve) => proc.once('message', resolve))
  proc.send({ id: 0, op: 'guard', args: [n, { exitCode: 7 }] })
  eq(await exited, 7, 'exit code')
  const text = fs.readFileSync(errFile, 'utf8')
  check(text.includes(n) && text.includes(`pid ${process.pid}`), `message: ${JSON.stringify(text)}`)
  eq(text.trim().split('\n').length >= 1, true, 'message present')
  const [c] = await children(1)
  const e = await c.fails('guard', n, { onLocked: 'throw' })
  eq(e.code, 'ELOCKED', 'onLocked throw')
  lock.release()
  await c.call('guard', n, {})
  await c.kill()
})

scenario('scopes: the same name in user and machine scope is two locks', async () => {
  const [c] = await children(1)
  const n = name('scope')
  const user = il.tryLock(n)
  await c.call('tryLock', n, { scope: 'machine' })
  const e = throws(() => il.tryLock(n, { scope: 'machine' }), 'ELOCKED', 'machine scope held by the child')
  eq(e.holder?.pid, c.pid, 'machine holder pid')
  const e2 = await c.fails('tryLock', n)
  eq(e2.holder?.pid, process.pid, 'user holder pid')
  if (WIN) {
    check(user.path.startsWith('Local\\instance-lock.'), `user path ${user.path}`)
    check(il.inspect(n, { scope: 'machine' }).path.startsWith('Global\\instance-lock.'), 'machine path')
  }
  eq(il.inspect(n, { scope: 'machine' }).holder?.pid, c.pid, 'inspect machine')
  check(
    il.list({ scope: 'machine' }).some((s) => s.name === n && s.locked),
    'list machine',
  )
  user.release()
  await c.kill()
  il.tryLock(n, { scope: 'machine' }).release()
})

scenario('dir: processes passing the same dir contend, however it is spelled', async () => {
  const [c] = await children(1)
  const n = name('dir')
  const d = path.join(work, 'Locks')
  const lock = il.tryLock(n, { dir: d })
  const spelled = WIN ? d.toUpperCase() + path.sep : d + path.sep
  const e = await c.fails('tryLock', n, { dir: spelled })
  eq(e.holder?.pid, process.pid, 'holder pid')
  await c.call('tryLock', n, { dir: path.join(work, 'other') })
  await c.call('tryLock', n)
  check(
    il.list({ dir: d }).some((s) => s.name === n && s.locked),
    'list dir',
  )
  lock.release()
  await c.kill()
})

scenario('key: two spellings of one file are one lock', async () => {
  const [c] = await children(1)
  const n = name('key')
  const file = path.join(work, 'Data.db')
  fs.writeFileSync(file, '')
  const lock = il.tryLock(n, { key: file })
  const other = WIN ? file.toLowerCase() : path.join(work, '.', 'Data.db')
  const e = await c.fails('tryLock', n, { key: other })
  eq(e.holder?.pid, process.pid, 'holder pid')
  await c.call('tryLock', n, { key: 'something else' })
  lock.release()
  await c.kill()
})

scenario('inspect never makes a concurrent tryLock fail', async () => {
  const [looker, taker] = await children(2)
  const n = name('hammer')
  const ms = 3_000
  const [inspections, r] = await Promise.all([looker.call('inspectLoop', n, {}, ms), taker.call('tryLoop', n, {}, ms)])
  eq(r.failures, 0, `failed tryLocks (${r.codes.join(',')}) among ${r.acquired} while ${inspections} inspections ran`)
  check(r.acquired > 0 && inspections > 0, 'both loops ran')
  metrics.push(`hammer ${inspections} inspections vs ${r.acquired} tryLocks, 0 failed`)
  await Promise.all([looker.kill(), taker.kill()])
})

scenario('stop: terminates the verified holder only', async () => {
  const n = name('stop')
  eq(JSON.stringify(await il.stop(n)), JSON.stringify({ stopped: true, forced: false }), 'not held')
  const [c] = await children(1)
  await c.call('tryLock', n)
  const r = await il.stop(n, { timeout: 30_000 })
  eq(r.stopped, true, 'stopped')
  eq(r.pid, c.pid, 'pid')
  await c.exited
  il.tryLock(n).release()
})

scenario(
  'workers: each thread owns its own locks; a terminated worker leaves nothing held',
  async () => {
    const [held, direct, waited, pending] = ['held', 'direct', 'waited', 'pending'].map(name)
    const mine = il.tryLock(held)
    const later = il.tryLock(waited)
    const blocker = il.tryLock(pending)
    const w = new Worker(
      `const { parentPort, workerData: d } = require('node:worker_threads')
    const il = require(d.root)
    let tryHeld
    try { il.tryLock(d.held) } catch (err) { tryHeld = err.code }
    il.tryLock(d.direct)
    il.lock(d.waited).then(() => parentPort.postMessage({ got: true }))
    il.lock(d.pending)
    parentPort.postMessage({ tryHeld })`,
      { eval: true, workerData: { root: ROOT, held, direct, waited, pending } },
    )
    const messages = []
    const next = () => new Promise((resolve) => w.once('message', resolve))
    messages.push(await next())
    eq(messages[0].tryHeld, 'ELOCKED', 'worker tryLock of a lock the main thread holds')
    const got = next()
    later.release()
    eq((await got).got, true, 'worker got the released lock')
    throws(() => il.tryLock(direct), 'ELOCKED', 'main tryLock of the worker-held lock')
    await w.terminate()
    // Released by the worker's environment as it went (not merely abandoned
    // by its thread), and its pending wait ended without a crash.
    const a = il.tryLock(direct)
    const b = il.tryLock(waited)
    eq(a.recovered, undefined, 'direct lock released cleanly')
    eq(b.recovered, undefined, 'waited lock released cleanly')
    for (const l of [a, b, mine, blocker]) l.release()
  },
  WIN,
)

scenario(
  'a name taken by another kind of kernel object: a clear error, not a crash',
  async () => {
    const n = name('squat')
    const probe = il.tryLock(`${n}x`)
    const mutex = probe.path.slice(0, -1)
    probe.release()
    const sq = spawn(process.env.IL_SQUAT, [mutex], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise((resolve) => sq.once('exit', resolve))
    await new Promise((resolve, reject) => {
      sq.stdout.once('data', resolve)
      sq.once('exit', (code) => reject(new Error(`squat.exe exited with ${code}`)))
    })
    try {
      const e = throws(() => il.tryLock(n), 'EINVAL', 'tryLock')
      eq(e.syscall, 'CreateMutexExW', 'syscall')
      eq(e.path, mutex, 'path')
      throws(() => il.inspect(n), 'EINVAL', 'inspect')
      eq((await rejects(il.lock(n, { timeout: 5_000 }), 'lock')).code, 'EINVAL', 'lock code')
    } finally {
      sq.kill()
      await exited
    }
    il.tryLock(n).release()
  },
  WIN && process.env.IL_SQUAT !== undefined,
)

scenario(
  'a forged or stale holder record is not believed, and nobody is terminated on its word',
  async () => {
    const [c] = await children(1)
    const n = name('forged')
    const d = path.join(work, 'forged')
    await c.call('tryLock', n, { dir: d })
    const file = path.join(d, `${n}.lock`)
    const genuine = JSON.parse(fs.readFileSync(file, 'utf8'))
    eq(il.inspect(n, { dir: d }).holder?.pid, c.pid, 'the genuine record is believed')
    const forge = (fields) => fs.writeFileSync(file, JSON.stringify({ ...genuine, ...fields }))
    // This process without its creation time; the holder's pid with another
    // creation time (a reused pid); a pid nobody has.
    for (const fields of [{ pid: process.pid, processStartTime: '1' }, { processStartTime: '1' }, { pid: 999_996 }]) {
      forge(fields)
      const st = il.inspect(n, { dir: d })
      eq(st.locked, true, 'locked')
      eq(st.holder, undefined, `holder believed from ${JSON.stringify(fields)}`)
    }
    forge({ processStartTime: '1' })
    // What stop() reports for an unprovable holder is its own business; what
    // matters here is that the process named by the record is left alone.
    const r = await il.stop(n, { dir: d, timeout: 500 }).catch((err) => ({ error: err }))
    eq(r.stopped === true || r.pid !== undefined, false, `stop() result ${JSON.stringify(r)}`)
    eq((await c.call('inspect', n, { dir: d })).locked, true, 'the holder lives on')
    await c.kill()
  },
  WIN,
)

scenario('bad input: clear errors with codes, before anything is touched', async () => {
  const cases = [
    [() => il.tryLock(''), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock(42), 'ERR_INVALID_ARG_TYPE'],
    [() => il.tryLock('a\\b'), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('a/b'), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('..'), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('x'.repeat(65)), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('a\0b'), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('ok', { scope: 'galaxy' }), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('ok', { key: '' }), 'ERR_INVALID_ARG_VALUE'],
    [() => il.tryLock('ok', { key: 7 }), 'ERR_INVALID_ARG_TYPE'],
    [() => il.tryLock('ok', { data: [] }), 'ERR_INVALID_ARG_TYPE'],
    [() => il.inspect(null), 'ERR_INVALID_ARG_TYPE'],
    [() => il.list({ scope: 1 }), 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [fn, code] of cases) throws(fn, code, fn.toString())
  eq((await rejects(il.lock('ok', { timeout: -1 }), 'negative timeout')).code, 'ERR_OUT_OF_RANGE', 'negative timeout')
  eq((await rejects(il.lock('ok', { signal: 'no' }), 'bad signal')).code, 'ERR_INVALID_ARG_TYPE', 'bad signal')
  eq((await rejects(il.lock('', {}), 'bad name')).code, 'ERR_INVALID_ARG_VALUE', 'lock bad name')
  eq(il.inspect('ok').locked, false, 'nothing was taken')
})

// ---------------------------------------------------------------------------

let passed = 0
let failed = 0
const started = Date.now()
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
for (const m of metrics) console.log(`# ${m}`)
console.log(`# node ${process.version} ${process.platform}-${process.arch}, ${Date.now() - started} ms`)
fs.rmSync(work, { recursive: true, force: true })
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
