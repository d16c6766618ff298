// The behaviours every backend must show, written once and run against each:
// flock natively on Linux, the same flock backend built as macOS and the BSDs
// get it (scripts/build-portable.mjs), the Windows named mutexes under Wine
// with node.exe (test/conformance.test.ts, test/windows.test.ts), and
// PostgreSQL advisory locks, instance-lock/postgres
// (test/postgres/scenarios.test.ts). Prints the backend, one line per
// scenario and a last line `N passed, N failed`; exits 1 if any failed.
//
//   node test/conformance/scenarios.mjs [filter]
//   INSTANCE_LOCK_PREBUILD=.cache/portable node test/conformance/scenarios.mjs [filter]
//   IL_BACKEND=postgres IL_POSTGRES_URL=postgres://… node test/conformance/scenarios.mjs [filter]
//
// First the contract (exclusion, crash release, wait/timeout/abort/handoff,
// inspect takes nothing, the record, list, bad input, lock.signal, waitFor),
// then what the backends share beyond it, then what only some of them have.
// A scenario that does not run on every backend says where it applies (the
// capabilities of BACKEND, see backend.cjs) and why. Every call is awaited,
// which is the same for the local API's values and PostgreSQL's promises;
// where a local answer must come in the call, `refused` and the scenario
// `synchronous` say so. Nothing here sleeps to synchronise: children report
// over IPC, and times are only measured or bounded by generous limits (see
// harness.mjs).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { functionsWithArguments, outcome, wrongCalls } from './addon-calls.mjs'
import {
  BACKEND,
  ROOT,
  WIN,
  check,
  children,
  eq,
  fails,
  forkChild,
  il,
  metrics,
  name,
  queued,
  refused,
  rejects,
  released,
  run,
  scenario,
  takeFreed,
  throws,
  within,
  work,
} from './harness.mjs'

// ---------------------------------------------------------------------------
// The contract

scenario('exclusion in one process: a second tryLock of a held lock is refused, lock() waits for its release', async () => {
  const n = name('inproc')
  const a = await il.tryLock(n)
  const err = await refused(() => il.tryLock(n), 'ELOCKED', 'second tryLock')
  eq(err.name, 'LockedError', 'error name')
  check(err instanceof il.LockedError, 'a LockedError')
  eq(err.holder?.pid, process.pid, 'holder pid')
  await refused(() => il.tryLock(n, { key: undefined }), 'ELOCKED', 'tryLock again')
  eq((await il.inspect(n)).locked, true, 'inspect locked')
  const waiting = il.lock(n, { timeout: 30_000 })
  setTimeout(() => a.release(), 50)
  const b = await waiting
  eq(a.released, true, 'first released')
  eq(b.released, false, 'the waiter holds it')
  await refused(() => il.tryLock(n), 'ELOCKED', 'tryLock while the waiter holds it')
  await released(b)
  await released(await il.tryLock(n))
  eq((await il.inspect(n)).locked, false, 'free at the end')
})

// A caller of a synchronous backend may use the lock, or the answer, in the
// turn it asked: PostgreSQL's answers are promises by definition.
scenario(
  'synchronous: tryLock, inspect and list answer in the call, and a lock is free once release() returns',
  async () => {
    const n = name('sync')
    const a = il.tryLock(n)
    check(!(a instanceof Promise) && a.released === false, 'tryLock returned a held Lock')
    const s = il.inspect(n)
    check(!(s instanceof Promise) && s.locked === true, 'inspect returned a status')
    check(Array.isArray(il.list()), 'list returned an array')
    a.release()
    eq(il.inspect(n).locked, false, 'free once release() returned')
  },
  BACKEND.sync,
)

scenario('exclusion between processes: tryLock is refused with a LockedError naming the holder, both ways', async () => {
  const [c] = await children(1)
  const n = name('cross')
  const r = await c.call('tryLock', n)
  const err = await refused(() => il.tryLock(n), 'ELOCKED', 'tryLock while a child holds it')
  eq(err.name, 'LockedError', 'error name')
  check(err instanceof il.LockedError, 'a LockedError')
  eq(err.holder?.pid, c.pid, 'holder pid')
  eq(err.holder?.hostname, os.hostname(), 'holder hostname')
  await c.call('release', r.path)
  const mine = await il.tryLock(n)
  const e2 = await c.fails('tryLock', n)
  eq(e2.code, 'ELOCKED', 'child tryLock code')
  eq(e2.name, 'LockedError', 'child error name')
  eq(e2.holder?.pid, process.pid, 'child sees this process as holder')
  eq(e2.holder?.hostname, os.hostname(), 'child sees the holder hostname')
  await released(mine)
  await c.call('tryLock', n)
  await c.kill()
})

scenario('crash release: a holder killed (SIGKILL, TerminateProcess) frees the lock for the processes waiting', async () => {
  const [a, b] = await children(2)
  const n = name('kill')
  await a.call('tryLock', n)
  const got = b.event('got')
  await b.call('lockLater', n, {}, 'got')
  await queued(n, 1)
  const t0 = Date.now()
  await a.kill()
  const m = await got
  metrics.push(`kill→acquired ${m.result.t - t0} ms`)
  eq(m.ok, true, 'the waiting process got the lock')
  if (WIN) eq(m.result.recovered, true, 'recovered (WAIT_ABANDONED)')
  // Killed while holding a lock it waited for, with this process waiting.
  const waiting = il.lock(n, { timeout: 30_000 })
  await queued(n, 1)
  await b.kill()
  const lock = await waiting
  if (WIN) eq(lock.recovered, true, 'recovered (WAIT_ABANDONED)')
  await released(lock)
  const [d] = await children(1)
  await d.call('tryLock', n)
  await d.kill()
  await released(await takeFreed(n))
})

scenario('wait and handoff: lock() in another process gets the lock when the holder releases it, within milliseconds', async () => {
  const [c] = await children(1)
  const n = name('handoff')
  const times = []
  for (let i = 0; i < 5; i++) {
    const lock = await il.tryLock(n)
    const got = c.event(`got${i}`)
    await c.call('lockLater', n, {}, `got${i}`)
    await queued(n, 1)
    const t0 = Date.now()
    lock.release()
    const m = await got
    eq(m.ok, true, 'child acquired')
    times.push(m.result.t - t0)
    await refused(() => il.tryLock(n), 'ELOCKED', 'tryLock while the child holds it')
    await c.call('release', m.result.path)
  }
  const [c2] = await children(1)
  for (let i = 0; i < 3; i++) {
    const r = await c2.call('tryLock', n)
    const waiting = il.lock(n, { timeout: 30_000 })
    await queued(n, 1)
    const { t } = await c2.call('release', r.path)
    const lock = await waiting
    times.push(Date.now() - t)
    await released(lock)
  }
  times.sort((a, b) => a - b)
  metrics.push(`handoff median ${times[Math.floor(times.length / 2)]} ms, max ${times.at(-1)} ms`)
  check(times.at(-1) < 2_000, `handoff took ${times.at(-1)} ms`)
  await Promise.all([c.kill(), c2.kill()])
})

scenario('wait: a pending lock() keeps its process alive and gets the lock when released', async () => {
  const n = name('alive')
  const lock = await il.tryLock(n)
  const [c] = await children(1)
  const got = c.event('got')
  await c.callAndDetach('lockLater', n, {}, 'got')
  await queued(n, 1)
  let exitedEarly = false
  void c.exited.then(() => (exitedEarly = true))
  await new Promise((resolve) => setTimeout(resolve, 500))
  eq(exitedEarly, false, 'child exited while its lock() was pending')
  lock.release()
  const m = await got
  eq(m.ok, true, 'child acquired')
  await c.exited
})

scenario('timeout: lock() gives up with a LockedError naming the holder, and holds nothing afterwards', async () => {
  const [c, d] = await children(2)
  const n = name('timeout')
  const r = await c.call('tryLock', n, { data: { port: 7 } })
  const t0 = Date.now()
  const e = await fails(() => il.lock(n, { timeout: 300 }), 'lock() with a timeout')
  const ms = Date.now() - t0
  eq(e.code, 'ELOCKED', 'code')
  eq(e.name, 'LockedError', 'name')
  eq(e.holder?.pid, c.pid, 'holder pid')
  eq(e.holder?.data?.port, 7, 'holder data')
  check(ms >= 250, `gave up after ${ms} ms, well before its 300 ms`)
  await c.call('release', r.path)
  await d.call('tryLock', n)
  eq((await il.inspect(n)).holder?.pid, d.pid, 'the other process holds it')
})

scenario('timeout and abort in a waiting process: neither leaves a thread, handle or timer behind', async () => {
  const n = name('giveup')
  const lock = await il.tryLock(n)
  const [c] = await children(1)
  const r = await c.callAndDetach('waitThenGiveUp', n, {})
  eq(r.timeout?.code, 'ELOCKED', 'timeout code')
  eq(r.timeout?.holderPid, process.pid, 'timeout holder pid')
  check(r.timeout.ms >= 200, `timed out after ${r.timeout.ms} ms, well before its 300 ms`)
  eq(r.abort?.name, 'AbortError', 'abort error name')
  // Detached, the child ends by itself unless a thread, handle or timer of
  // the settled waits is left.
  const exit = await within(c.exited, 30_000, 'the child exiting by itself')
  eq(exit.code, 0, 'child exit code')
  await released(lock)
})

scenario('abort: lock() rejects with an AbortError and holds nothing afterwards, even aborted as the lock is released', async () => {
  const [c, d] = await children(2)
  const n = name('abort')
  const freeNow = async (what) => {
    const r = await d.call('tryLock', n).catch((err) => {
      throw new Error(`${what}: another process could not take the lock (${err.code}, holder ${err.holder?.pid})`)
    })
    await d.call('release', r.path)
  }
  const pre = await fails(() => il.lock(n, { signal: AbortSignal.abort() }), 'lock() with an aborted signal')
  eq(pre.name, 'AbortError', 'already aborted')
  await freeNow('after an already aborted lock()')
  let lock = await il.tryLock(n)
  const ended = c.event('a0')
  await c.call('lockAbortable', n, {}, 'a0')
  await queued(n, 1)
  await c.call('abort', 'a0')
  const m = await ended
  eq(m.ok, false, 'the aborted wait acquired')
  eq(m.error.name, 'AbortError', 'error name')
  await released(lock)
  await freeNow('after an aborted wait')
  // Aborted while the lock is being released: either outcome is right, but
  // a wait that rejected holds nothing.
  let aborted = 0
  const rounds = 20
  for (let i = 1; i <= rounds; i++) {
    lock = await il.tryLock(n)
    const tag = `a${i}`
    const ended = c.event(tag)
    await c.call('lockAbortable', n, {}, tag)
    await queued(n, 1)
    // Aborted just before or just after the release, in turn.
    let aborting
    let releasing
    if (i % 2 === 0) {
      aborting = c.call('abort', tag)
      releasing = released(lock)
    } else {
      releasing = released(lock)
      aborting = c.call('abort', tag)
    }
    await Promise.all([aborting, releasing])
    const m = await ended
    if (m.ok) await c.call('release', m.result.path)
    else {
      eq(m.error.name, 'AbortError', 'error name')
      aborted++
    }
    await freeNow(`round ${i}, ${m.ok ? 'acquired' : 'aborted'}`)
  }
  metrics.push(`abort as released: ${aborted} of ${rounds} aborted, the others acquired`)
})

// "In the order they asked": the order of the calls, made back to back (a
// PostgreSQL wait reaches the server on a connection of its own, so waits
// of one process must queue in the process, not there).
scenario('FIFO within a process: each release hands the lock to the next waiter in the order they asked, past those that gave up', async () => {
  const [c] = await children(1)
  const n = name('fifo')
  const r = await c.call('tryLock', n)
  const order = []
  const gaveUp = []
  const locks = []
  // The first (the one waiting for the holder) and the third give up.
  const aborts = [new AbortController(), undefined, new AbortController(), undefined]
  const waits = []
  for (const [i, ac] of aborts.entries()) {
    waits.push(
      il.lock(n, { timeout: 60_000, signal: ac?.signal }).then(
        (l) => {
          order.push(String(i))
          locks.push(l)
        },
        (err) => gaveUp.push(`${i}:${err.name}`),
      ),
    )
  }
  await queued(n, 1)
  aborts[0].abort()
  aborts[2].abort()
  await Promise.all([waits[0], waits[2]])
  eq(gaveUp.sort().join(), '0:AbortError,2:AbortError', 'the waits that gave up')
  eq(order.join(), '', 'acquired while the holder held it')
  await c.call('release', r.path)
  await Promise.race([waits[1], waits[3]])
  // The last keeps waiting while the one before holds it.
  eq(order.join(), '1', 'after the holder released')
  locks[0].release()
  await waits[3]
  eq(order.join(), '1,3', 'after the first waiter released')
  await released(locks[1])
  await released(await il.tryLock(n))
})

scenario('timeout 0 behaves as tryLock: refused at once when held, taken when free', async () => {
  const [c] = await children(1)
  const n = name('zero')
  const r = await c.call('tryLock', n)
  const e = await within(
    fails(() => il.lock(n, { timeout: 0 }), 'lock() with timeout 0'),
    10_000,
    'lock() with timeout 0 to settle while held',
  )
  eq(e.code, 'ELOCKED', 'code')
  eq(e.holder?.pid, c.pid, 'holder pid')
  await c.call('release', r.path)
  const lock = await within(il.lock(n, { timeout: 0 }), 10_000, 'lock() with timeout 0 to settle while free')
  eq(lock.released, false, 'held')
  const e2 = await c.fails('lock', n, { timeout: 0 })
  eq(e2.code, 'ELOCKED', 'child code')
  eq(e2.holder?.pid, process.pid, 'child sees this process as holder')
  await released(lock)
  await c.kill()
})

// A release that completes in the call: PostgreSQL's reaches the server a
// round trip later (the API says so), so one made in the deadline's turn is
// not before it.
scenario(
  'deadline: a lock released in the same turn as the timeout, before it, is taken, not reported held by its gone holder',
  async () => {
    const n = name('deadline')
    for (let round = 0; round < 3; round++) {
      const held = il.tryLock(n)
      const pending = il.lock(n, { timeout: 50 })
      setTimeout(() => held.release(), 10)
      // Busy: both timers are due when this ends, the release first.
      const end = Date.now() + 200
      while (Date.now() < end);
      const lock = await within(pending, 10_000, 'lock() to settle')
      eq(lock.released, false, `held, round ${round}`)
      lock.release()
    }
  },
  BACKEND.sync,
)

scenario('inspect never takes: a concurrent tryLock loop in another process never fails', async () => {
  const [looker, taker] = await children(2)
  const n = name('hammer')
  const ms = 3_000
  const [inspections, r] = await Promise.all([looker.call('inspectLoop', n, {}, ms), taker.call('tryLoop', n, {}, ms)])
  eq(r.failures, 0, `failed tryLocks (${r.codes.join(',')}) among ${r.acquired} while ${inspections} inspections ran`)
  check(r.acquired > 0 && inspections > 0, 'both loops ran')
  metrics.push(`hammer ${inspections} inspections vs ${r.acquired} tryLocks, 0 failed`)
  await Promise.all([looker.kill(), taker.kill()])
})

scenario('record: pid, hostname, startedAt, key, data, update() and ready() reach another process, and go with the lock', async () => {
  const [c] = await children(1)
  const n = name('record')
  const key = `resource-${n}`
  const r = await c.call('tryLock', n, { key, data: { port: 1234, tags: ['a'] } })
  const s = await il.inspect(n, { key })
  eq(s.locked, true, 'locked')
  eq(s.name, n, 'name')
  eq(s.key, key, 'key')
  eq(s.scope, BACKEND.scope, 'scope')
  eq(s.path, r.path, 'path')
  const h = s.holder
  check(h !== undefined, 'no holder shown')
  eq(h.pid, c.pid, 'holder pid')
  eq(h.hostname, os.hostname(), 'holder hostname')
  eq(h.startedAt, r.acquiredAt, 'holder startedAt')
  eq(h.name, n, 'holder name')
  eq(h.key, key, 'holder key')
  eq(h.scope, BACKEND.scope, 'holder scope')
  eq(JSON.stringify(h.data), JSON.stringify({ port: 1234, tags: ['a'] }), 'holder data')
  eq(h.ready, undefined, 'ready before ready()')
  eq((await il.inspect(n)).locked, false, 'the name without the key is another lock')
  await c.call('update', r.path, { port: 4321 })
  eq(JSON.stringify((await il.inspect(n, { key })).holder?.data), JSON.stringify({ port: 4321 }), 'data after update()')
  await c.call('ready', r.path, { port: 5555 })
  const ready = (await il.inspect(n, { key })).holder
  eq(ready?.ready, true, 'ready after ready()')
  eq(ready?.data?.port, 5555, 'data given to ready()')
  eq(ready?.startedAt, r.acquiredAt, 'startedAt after update() and ready()')
  await c.call('release', r.path)
  const after = await il.inspect(n, { key })
  eq(after.locked, false, 'locked after release')
  eq(after.holder, undefined, 'holder after release')
  eq((await c.fails('update', r.path, { port: 1 })).code, 'ERR_INVALID_STATE', 'update() after release')
  eq((await c.fails('ready', r.path)).code, 'ERR_INVALID_STATE', 'ready() after release')
  await c.kill()
  // What a lock says of its own holder is what the others see.
  const mine = await il.tryLock(n, { key, data: { port: 9 } })
  const own = mine.holder
  eq(own?.pid, process.pid, 'own holder pid')
  eq(own?.hostname, os.hostname(), 'own holder hostname')
  eq(own?.startedAt, mine.acquiredAt.toISOString(), 'own holder startedAt')
  eq(own?.name, n, 'own holder name')
  eq(own?.key, key, 'own holder key')
  eq(own?.scope, BACKEND.scope, 'own holder scope')
  eq(JSON.stringify(own?.data), '{"port":9}', 'own holder data')
  await released(mine)
})

scenario('list: shows the locks another process holds, with their holders, and not as held once released', async () => {
  const [c] = await children(1)
  const n = name('list')
  const key = `k-${n}`
  const a = await c.call('tryLock', n, { data: { which: 'plain' } })
  const b = await c.call('tryLock', n, { key, data: { which: 'keyed' } })
  const held = (await il.list()).filter((s) => s.name === n && s.locked)
  eq(held.length, 2, 'held locks of the name')
  for (const s of held) {
    eq(s.scope, BACKEND.scope, 'scope')
    eq(s.holder?.pid, c.pid, 'holder pid')
  }
  const keyed = held.find((s) => s.holder?.key === key)
  eq(keyed?.holder?.data?.which, 'keyed', 'the keyed lock with its data')
  eq(keyed?.path, b.path, 'the keyed lock path')
  eq(held.find((s) => s !== keyed)?.path, a.path, 'the plain lock path')
  await c.call('release', a.path)
  await c.call('release', b.path)
  eq(
    (await il.list()).some((s) => s.name === n && s.locked),
    false,
    'listed as held after release',
  )
  await c.kill()
})

scenario('bad input: errors with codes, thrown or rejected before anything is touched', async () => {
  // Touched would be a directory made by the local backend, a connection by
  // PostgreSQL's: its calls here go to a server that is not there, so one
  // that got as far as connecting fails with another code.
  const d = path.join(work, 'untouched')
  const [t, o] = BACKEND.files ? [il, { dir: d }] : [BACKEND.offline(), {}]
  const cases = [
    [() => t.tryLock('', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock(42, o), 'ERR_INVALID_ARG_TYPE'],
    [() => t.tryLock(undefined, o), 'ERR_INVALID_ARG_TYPE'],
    [() => t.tryLock('a\\b', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('a/b', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('..', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('.hidden', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('x'.repeat(65), o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('a\0b', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('ok', 'options'), 'ERR_INVALID_ARG_TYPE'],
    [() => t.tryLock('ok', { ...o, key: '' }), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('ok', { ...o, key: 7 }), 'ERR_INVALID_ARG_TYPE'],
    [() => t.tryLock('ok', { ...o, key: 'a\0b' }), 'ERR_INVALID_ARG_VALUE'],
    [() => t.tryLock('ok', { ...o, data: [] }), 'ERR_INVALID_ARG_TYPE'],
    [() => t.tryLock('ok', { ...o, data: { n: 1n } }), 'ERR_INVALID_ARG_VALUE'],
    [() => t.inspect(null, o), 'ERR_INVALID_ARG_TYPE'],
    [() => t.inspect('a/b', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.singleInstance('', { ...o, onLocked: 'throw' }), 'ERR_INVALID_ARG_VALUE'],
    [() => t.singleInstance('ok', { ...o, onLocked: 'later' }), 'ERR_INVALID_ARG_VALUE'],
    [() => t.lock('', o), 'ERR_INVALID_ARG_VALUE'],
    [() => t.lock('ok', { ...o, timeout: -1 }), 'ERR_OUT_OF_RANGE'],
    [() => t.lock('ok', { ...o, timeout: 'soon' }), 'ERR_INVALID_ARG_TYPE'],
    [() => t.lock('ok', { ...o, signal: 'no' }), 'ERR_INVALID_ARG_TYPE'],
    [() => t.stop('a/b', o), 'ERR_INVALID_ARG_VALUE'],
  ]
  // Scopes and directories are those of lock files.
  if (BACKEND.files) {
    cases.push(
      [() => t.tryLock('ok', { ...o, scope: 'galaxy' }), 'ERR_INVALID_ARG_VALUE'],
      [() => t.tryLock('ok', { dir: 5 }), 'ERR_INVALID_ARG_TYPE'],
      [() => t.list({ scope: 1, dir: d }), 'ERR_INVALID_ARG_TYPE'],
    )
  }
  if (BACKEND.waitFor) {
    cases.push([() => t.waitFor('', o), 'ERR_INVALID_ARG_VALUE'], [() => t.waitFor('ok', { ...o, ready: 'yes' }), 'ERR_INVALID_ARG_TYPE'])
  }
  for (const [fn, code] of cases) eq((await fails(fn, fn.toString())).code, code, fn.toString())
  if (BACKEND.files) eq(fs.existsSync(d), false, 'the directory was made')
  else eq((await fails(() => t.tryLock('ok'), 'tryLock on a server that is not there')).code, 'ECONNREFUSED', 'a call that connects')
  const lock = await il.tryLock(name('update'))
  throws(() => lock.update([]), 'ERR_INVALID_ARG_TYPE', 'update([])')
  throws(() => lock.update('text'), 'ERR_INVALID_ARG_TYPE', "update('text')")
  throws(() => lock.ready(7), 'ERR_INVALID_ARG_TYPE', 'ready(7)')
  eq(JSON.stringify((await il.inspect(lock.name)).holder?.data), undefined, 'data after refused updates')
  await released(lock)
})

// The addon is the local backend's.
scenario(
  'the addon: every function refuses arguments of the wrong type or range with a TypeError, touching nothing',
  async () => {
    const addon = createRequire(path.join(ROOT, 'package.json'))('node-gyp-build')(ROOT)
    const calls = wrongCalls(addon)
    const covered = new Set(calls.map(([fn]) => fn))
    eq(
      functionsWithArguments(addon)
        .filter((fn) => !covered.has(fn))
        .join(', '),
      '',
      'functions without a wrong call',
    )
    const cwd = process.cwd()
    const d = fs.mkdtempSync(path.join(work, 'boundary-'))
    process.chdir(d)
    try {
      for (const [fn, args] of calls) eq(outcome(addon, fn, args), 'ok', `${fn}(${args.map((a) => (typeof a === 'function' ? 'fn' : JSON.stringify(a))).join(', ')})`)
    } finally {
      process.chdir(cwd)
    }
    eq(fs.readdirSync(d).join(', '), '', 'files made by refused calls')
  },
  BACKEND.addon,
)

scenario('lock.signal: an AbortSignal, not aborted while the lock is held and contended, nor by release()', async () => {
  const [c] = await children(1)
  const n = name('signal')
  const r = await c.call('tryLock', n)
  const theirs = await c.call('lockSignal', r.path)
  eq(theirs.isAbortSignal, true, 'an AbortSignal')
  eq(theirs.aborted, false, 'aborted at once')
  const m = name('signal-mine')
  const mine = await il.tryLock(m)
  check(mine.signal instanceof AbortSignal, 'an AbortSignal')
  // Contended and inspected for longer than the checks' 1000 ms interval, in
  // both processes.
  const end = Date.now() + 2_500
  let tries = 0
  while (Date.now() < end) {
    await refused(() => il.tryLock(n), 'ELOCKED', "tryLock of the child's lock")
    eq((await il.inspect(n)).locked, true, "inspect of the child's lock")
    await c.fails('tryLock', m)
    tries++
  }
  const after = await c.call('lockSignal', r.path)
  eq(after.aborted, false, `the holder's signal aborted (${after.reason}) after ${tries} contending tries`)
  eq(mine.signal.aborted, false, `this process's signal aborted (${mine.signal.reason?.code})`)
  mine.release()
  eq(mine.signal.aborted, false, 'aborted by release()')
  await released(mine)
  eq(mine.signal.aborted, false, 'aborted once the release completed')
  await c.call('release', r.path)
  const gone = await c.call('lockSignal', r.path)
  eq(gone.aborted, false, `the holder's signal aborted (${gone.reason}) by its release`)
  await c.kill()
})

// PostgreSQL has no waitFor.
scenario(
  'waitFor: resolves once another process holds the lock, with ready: true once it is ready, and takes nothing',
  async () => {
    const [c] = await children(1)
    const n = name('waitfor')
    const settled = { held: false, ready: false }
    const held = il.waitFor(n, { timeout: 60_000 })
    const ready = il.waitFor(n, { ready: true, timeout: 60_000 })
    void held.finally(() => (settled.held = true)).catch(() => {})
    void ready.finally(() => (settled.ready = true)).catch(() => {})
    eq((await c.call('inspect', n)).locked, false, 'free')
    eq(settled.held, false, 'waitFor settled while the lock was free')
    const r = await c.call('tryLock', n, { data: { port: 80 } })
    const s = await held
    eq(s.locked, true, 'locked')
    eq(s.name, n, 'name')
    if (s.holder !== undefined) eq(s.holder.pid, c.pid, 'holder pid')
    await c.call('update', r.path, { port: 81 })
    eq(settled.ready, false, 'waitFor({ ready: true }) settled before ready()')
    await c.call('ready', r.path)
    const rs = await ready
    eq(rs.holder?.ready, true, 'ready')
    eq(rs.holder?.pid, c.pid, 'ready holder pid')
    eq(rs.holder?.data?.port, 81, 'ready holder data')
    await c.call('release', r.path)
    const e = await fails(() => il.waitFor(n, { timeout: 100 }), 'waitFor of a free lock')
    eq(e.code, 'ETIMEDOUT', 'timeout code')
    const ac = new AbortController()
    const aborted = il.waitFor(n, { signal: ac.signal, timeout: 60_000 })
    ac.abort()
    eq((await rejects(aborted, 'aborted waitFor')).name, 'AbortError', 'abort error name')
    await c.call('tryLock', n)
    await c.kill()
  },
  BACKEND.waitFor,
)

// ---------------------------------------------------------------------------
// Beyond the contract's core, on every backend

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
    const st = await il.inspect(n)
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

scenario('singleInstance: the second instance prints the holder and exits with exitCode', async () => {
  const n = name('guard')
  const lock = await il.singleInstance(n)
  const errFile = path.join(work, `${n}.stderr`)
  const fd = fs.openSync(errFile, 'w')
  const proc = forkChild({}, ['ignore', 'ignore', fd, 'ipc'])
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
  await released(lock)
  await c.call('guard', n, {})
  await c.kill()
})

// Scopes, directories and keys that name files are the local backend's: a
// PostgreSQL lock is one per database, and its keys are taken as written.
scenario(
  'scopes: the same name in user and machine scope is two locks',
  async () => {
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
  },
  BACKEND.files,
)

scenario(
  'dir: processes passing the same dir contend, however it is spelled',
  async () => {
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
  },
  BACKEND.files,
)

scenario(
  'key: two spellings of one file are one lock',
  async () => {
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
  },
  BACKEND.files,
)

scenario('stop: signals only a holder the system proves to hold the lock; where none can be proven, nobody', async () => {
  const n = name('stop')
  eq(JSON.stringify(await il.stop(n)), JSON.stringify({ stopped: true, forced: false }), 'not held')
  const [c] = await children(1)
  await c.call('tryLock', n)
  if (BACKEND.provesHolders) {
    const r = await il.stop(n, { timeout: 30_000 })
    eq(r.stopped, true, 'stopped')
    eq(r.pid, c.pid, 'pid')
    eq(r.forced, false, 'forced')
    if (BACKEND.cluster) eq(r.hostname, os.hostname(), 'hostname')
    await c.exited
    await released(await il.tryLock(n))
  } else {
    const r = await il.stop(n, { timeout: 500, force: true })
    eq(JSON.stringify({ ...r, holder: r.holder?.pid }), JSON.stringify({ stopped: false, forced: false, holder: c.pid, unverified: 'unsupported' }), 'result')
    eq((await c.call('inspect', n)).holder?.pid, c.pid, 'the holder lives on, holding the lock')
    await c.kill()
  }
})

// ---------------------------------------------------------------------------
// Windows only: what Linux covers in its own tests, and what only named
// mutexes have (the local backend, the addon's)

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
  WIN && BACKEND.addon,
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
  WIN && BACKEND.addon && process.env.IL_SQUAT !== undefined,
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
  WIN && BACKEND.addon,
)

// ---------------------------------------------------------------------------
// Messages to the running instance: a Unix socket beside the lock file, a
// named pipe served by the addon on Windows. The local backend's: a
// PostgreSQL holder may be on another host.

/** Where a client connects to the holder of the lock at `lockPath`. */
function endpointOf(lockPath) {
  return WIN ? `\\\\.\\pipe\\${lockPath}` : lockPath.replace(/\.lock$/, '.sock')
}

scenario(
  'messages: argv, cwd, pid and data reach the holder; its reply, or what it threw (EREMOTE), come back',
  async () => {
    const [c] = await children(1)
    const n = name('msg')
    eq((await rejects(il.send(n, 1, { timeout: 200 }), 'send to a free lock')).code, 'ENOTRUNNING', 'free')
    const { path: p } = await c.call('tryLock', n, {})
    eq((await rejects(il.send(n, 1, { timeout: 300 }), 'send to a holder that does not listen')).code, 'ENOLISTENER', 'not listening')
    await c.call('listen', p, 'echo')
    const data = { file: 'a b.txt', list: [1, '', null] }
    const { message } = await il.send(n, data)
    eq(JSON.stringify(message.argv), JSON.stringify(process.argv), 'argv')
    eq(message.cwd, process.cwd(), 'cwd')
    eq(message.pid, process.pid, 'pid, as the OS reports it')
    eq(message.uid, WIN ? undefined : process.getuid(), 'uid')
    eq(JSON.stringify(message.data), JSON.stringify(data), 'data')
    await c.call('listen', p, 'throw')
    const e = await rejects(il.send(n, 'refused'), 'send to a handler that throws')
    eq([e.code, e.message].join(' '), 'EREMOTE refused', 'EREMOTE')
    eq((await rejects(il.send(n, 'x'.repeat(65 * 1024)), 'oversized data')).code, 'ERR_INVALID_ARG_VALUE', 'over 64 KiB')
    await c.call('release', p)
    eq((await rejects(il.send(n, 1, { timeout: 300 }), 'send after release')).code, 'ENOTRUNNING', 'released')
    await c.kill()
  },
  BACKEND.messages,
)

scenario(
  'messages: senders of a start race are each handled once, one at a time, when the holder starts listening',
  async () => {
    const [c] = await children(1)
    const n = name('msg')
    const { path: p } = await c.call('tryLock', n, {})
    const sends = Array.from({ length: 10 }, (_, i) => il.send(n, i, { timeout: 30_000 }))
    await c.call('listen', p, 'echo')
    const replies = await within(Promise.all(sends), 60_000, 'the replies')
    eq(replies.map((r) => r.message.data).join(), '0,1,2,3,4,5,6,7,8,9', 'each sender got its own reply')
    const { messages, maxRunning } = await c.call('received')
    eq(
      messages
        .map((m) => m.data)
        .sort((a, b) => a - b)
        .join(),
      '0,1,2,3,4,5,6,7,8,9',
      'handled once each',
    )
    eq(maxRunning, 1, 'handlers running at once')
    await c.kill()
  },
  BACKEND.messages,
)

scenario(
  'messages: singleInstance forward: a second instance exits 0 once answered, with exitCode when nobody listens',
  async () => {
    const [holder, second, third] = await children(3)
    const n = name('msg')
    const { path: p } = await holder.call('tryLock', n, {})
    eq((await rejects(third.call('forward', n, { timeout: 300, exitCode: 7 }), 'forward to a holder that does not listen')).message, 'child exited', 'third')
    eq((await third.exited).code, 7, 'exit code without a listener')
    await holder.call('listen', p, 'echo')
    eq((await rejects(second.call('forward', n, { message: { open: 'a.txt' } }), 'forward')).message, 'child exited', 'second')
    eq((await second.exited).code, 0, 'exit code once answered')
    const { messages } = await holder.call('received')
    eq(messages.length, 1, 'messages')
    eq(messages[0].pid, second.pid, 'pid')
    eq(JSON.stringify(messages[0].data), '{"open":"a.txt"}', 'data')
    await holder.kill()
  },
  BACKEND.messages,
)

scenario(
  'messages: a client that sends nothing, garbage, an oversized or half a frame is dropped; later senders are served',
  async () => {
    const net = await import('node:net')
    const [c] = await children(1)
    const n = name('msg')
    const { path: p } = await c.call('tryLock', n, {})
    await c.call('listen', p, 'echo')
    const acts = [() => {}, (s) => s.write('GET / HTTP/1.1\r\n\r\n'), (s) => s.write(Buffer.from([0, 1, 0, 1, 1])), (s) => s.write(Buffer.from([0, 0, 0, 100, 1, 123]))]
    for (const act of acts) {
      const s = net.connect(endpointOf(p))
      s.on('error', () => {})
      await within(new Promise((resolve) => s.once('connect', resolve)), 10_000, 'connect')
      act(s)
      await within(new Promise((resolve) => s.once('close', resolve)), 15_000, 'the holder dropping the client')
    }
    eq((await il.send(n, 'after')).message.data, 'after', 'a later sender is served')
    eq((await c.call('received')).messages.length, 1, 'the handler saw only the real message')
    await c.kill()
  },
  BACKEND.messages,
)

// Wine enforces neither FILE_FLAG_FIRST_PIPE_INSTANCE nor a pipe's DACL: a
// second server of the same name is accepted there, and clients reach
// either. What it can show is the sender's check of who serves the pipe.
const UNDER_WINE = WIN && (process.env.WINEPREFIX !== undefined || process.env.WINEDEBUG !== undefined)

scenario(
  'messages: a pipe not served by the holder is never sent anything; on Windows nobody else can serve the holder’s',
  async () => {
    const net = await import('node:net')
    const addon = createRequire(path.join(ROOT, 'package.json'))('node-gyp-build')(ROOT)
    const [c] = await children(1)
    const n = name('msg')
    const { path: p } = await c.call('tryLock', n, {})
    const pipe = endpointOf(p)
    let bytes = 0
    const squatter = net.createServer((s) => s.on('data', (b) => (bytes += b.length)))
    await new Promise((resolve) => squatter.listen(pipe, resolve))
    eq((await rejects(il.send(n, 'secret', { timeout: 500 }), 'send to a squatted pipe')).code, 'ENOLISTENER', 'no listener')
    eq(bytes, 0, 'bytes the squatter got')
    await new Promise((resolve) => squatter.close(resolve))
    await c.call('listen', p, 'echo')
    eq((await il.send(n, 'ok')).message.data, 'ok', 'the holder serves')
    if (!UNDER_WINE) {
      let refused
      try {
        addon.pipeClose(addon.pipeListen(pipe, false, 1000, () => {}))
      } catch (err) {
        refused = err.errno
      }
      check(refused === 5 || refused === 231, `a second server of the pipe: ${refused}`)
    }
    await c.kill()
  },
  WIN && BACKEND.messages,
)

await run(process.argv[2])
