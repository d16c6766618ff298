// A process the conformance scenarios and the test suite drive over IPC: it
// loads the package from IL_ROOT (the staged Windows package under Wine, the
// repo on Unix) the way a user's program does, does what it is asked and
// answers each request. Plain Node, no test framework, so it runs wherever
// node.exe runs. IL_BACKEND chooses the backend, as for the runner
// (backend.cjs).
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const backend = require('./backend.cjs').load(process.env.IL_ROOT)
const { il, released } = backend

// By path; a released lock stays until another of the path replaces it, so
// that what it does once released can be asked.
const held = new Map()
// The AbortControllers of pending lock() calls, by tag.
const controllers = new Map()

function plainError(err) {
  return { name: err.name, code: err.code, message: err.message, holder: err.holder, syscall: err.syscall, path: err.path }
}

function keep(lock) {
  held.set(lock.path, lock)
  return {
    path: lock.path,
    pid: process.pid,
    key: lock.key,
    acquiredAt: lock.acquiredAt.toISOString(),
    recovered: lock.recovered === true,
    t: Date.now(),
  }
}

const ops = {
  async tryLock(name, options) {
    return keep(await il.tryLock(name, options))
  },
  async lock(name, options) {
    return keep(await il.lock(name, options))
  },
  // Starts a wait and answers at once; the outcome comes later as a message.
  lockLater(name, options, tag) {
    il.lock(name, options).then(
      (lock) => process.send({ event: tag, ok: true, result: keep(lock) }),
      (err) => process.send({ event: tag, ok: false, error: plainError(err) }),
    )
    return { waiting: true }
  },
  // lockLater with an AbortController, which abort(tag) aborts.
  lockAbortable(name, options, tag) {
    const ac = new AbortController()
    controllers.set(tag, ac)
    return ops.lockLater(name, { ...options, signal: ac.signal }, tag)
  },
  abort(tag) {
    controllers.get(tag).abort()
    controllers.delete(tag)
  },
  // Reading lock.signal starts the checks for a lost lock.
  lockSignal(path) {
    const { signal } = held.get(path)
    return { isAbortSignal: signal instanceof AbortSignal, aborted: signal.aborted, reason: signal.reason?.code }
  },
  // When the release was asked for; answers once another process can take the lock.
  async release(path) {
    const t = Date.now()
    await released(held.get(path))
    return { t }
  },
  // Answer once another process can see what they wrote: a local record is
  // written when they return; a PostgreSQL one when their promise resolves.
  async update(path, data) {
    await held.get(path).update(data)
  },
  async ready(path, data) {
    await held.get(path).ready(data)
  },
  inspect(name, options) {
    return il.inspect(name, options)
  },
  list(options) {
    return il.list(options)
  },
  // Inspects as fast as it can for `ms`.
  async inspectLoop(name, options, ms) {
    const end = Date.now() + ms
    let n = 0
    while (Date.now() < end) {
      await il.inspect(name, options)
      n++
    }
    return n
  },
  // Takes and releases as fast as it can for `ms`; nobody else takes the
  // lock meanwhile, so every tryLock must succeed.
  async tryLoop(name, options, ms) {
    const end = Date.now() + ms
    let acquired = 0
    const failures = []
    while (Date.now() < end) {
      try {
        await released(await il.tryLock(name, options))
        acquired++
      } catch (err) {
        failures.push(err.code)
      }
    }
    return { acquired, failures: failures.length, codes: [...new Set(failures)] }
  },
  // acquire → critical section → release, `iterations` times. Inside, an
  // exclusive-create marker file must not exist (it would if two holders
  // overlapped), and a counter is read, widened and written back: any
  // overlap also loses an increment.
  async stress(name, options, iterations, counter, marker, mode) {
    let overlaps = 0
    let contended = 0
    for (let i = 0; i < iterations; i++) {
      let lock
      if (mode === 'try') {
        for (;;) {
          try {
            lock = await il.tryLock(name, options)
            break
          } catch (err) {
            if (err.code !== 'ELOCKED') throw err
            contended++
            await new Promise((resolve) => setImmediate(resolve))
          }
        }
      } else {
        lock = await il.lock(name, options)
      }
      let fd
      try {
        fd = fs.openSync(marker, 'wx')
      } catch {
        overlaps++
      }
      const v = Number(fs.readFileSync(counter, 'utf8') || '0')
      for (let j = 0; j < 20; j++) fs.statSync(counter)
      fs.writeFileSync(counter, String(v + 1))
      if (fd !== undefined) {
        fs.closeSync(fd)
        fs.unlinkSync(marker)
      }
      await released(lock)
    }
    return { overlaps, contended }
  },
  // The two ways a wait ends without the lock, in one go.
  async waitThenGiveUp(name, options) {
    const out = {}
    const t0 = Date.now()
    try {
      await il.lock(name, { ...options, timeout: 300 })
    } catch (err) {
      out.timeout = { code: err.code, ms: Date.now() - t0, holderPid: err.holder?.pid }
    }
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 200)
    try {
      await il.lock(name, { ...options, signal: ac.signal })
    } catch (err) {
      out.abort = { name: err.name }
    }
    return out
  },
  async guard(name, options) {
    keep(await il.singleInstance(name, options))
    return { pid: process.pid }
  },
  async stop(name, options) {
    return il.stop(name, options)
  },
  // A long-lived grandchild given nothing but what spawn passes by default:
  // shows the lock is not inherited.
  spawnSleeper() {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', detached: true })
    child.unref()
    return child.pid
  },
  exit(code) {
    process.exit(code)
  },
  // Messages: the held lock at `path` answers with `behaviour`, and keeps
  // what it was sent (and how many handlers ever ran at once).
  //   echo  replies { message }
  //   throw throws an Error with the data as its message
  //   gate  replies { message } to each once open() was called
  //   count replies with the number of messages received so far
  listen(path, behaviour) {
    held.get(path).onMessage(async (message) => {
      received.push(message)
      running++
      maxRunning = Math.max(maxRunning, running)
      try {
        if (behaviour === 'throw') throw new Error(String(message.data))
        if (behaviour === 'gate') await gate
        if (behaviour === 'count') return received.length
        return { message }
      } finally {
        running--
      }
    })
  },
  open() {
    openGate()
  },
  received() {
    return { messages: received, maxRunning }
  },
  // A second instance that hands over: exits (0 once answered, or
  // exitCode) when the lock is held; holds it and listens when free.
  async forward(name, options) {
    keep(await il.singleInstance(name, { onLocked: 'forward', ...options }))
    return { pid: process.pid }
  },
  async send(name, data, options) {
    return { reply: await il.send(name, data, options) }
  },
}

const received = []
let running = 0
let maxRunning = 0
let openGate
const gate = new Promise((resolve) => (openGate = resolve))

process.on('message', async (msg) => {
  if (msg.id === undefined) return
  const { id, op, args, detach } = msg
  try {
    const result = await ops[op](...args)
    process.send({ id, ok: true, result })
  } catch (err) {
    process.send({ id, ok: false, error: plainError(err) })
  }
  // From now on the IPC channel alone does not keep this process alive: the
  // runner checks what does (a pending wait must; a settled one must not).
  if (detach) process.channel.unref()
})
process.send({ ready: true, pid: process.pid })
