'use strict'
// A benchmark process for one library: `node worker.cjs LIBRARY DIR`.
// Commands arrive as JSON lines on stdin and every answer leaves as a JSON
// line on stdout carrying the command's id, so the runner can drive many
// workers side by side and interleave them. Times cross process boundaries
// as process.hrtime.bigint() values (CLOCK_MONOTONIC on Linux: one clock for
// every process of the machine).
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { adapters } = require('./subjects.cjs')

const [library, dir] = process.argv.slice(2)
const lib = adapters[library](dir)
let held = null

const now = () => process.hrtime.bigint()

function send(msg) {
  process.stdout.write(JSON.stringify(msg, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n')
}

// The critical section of the contention scenario: a read-increment-write of
// a shared counter, in separate system calls so that two processes inside at
// once lose an increment.
function increment(counter) {
  const n = Number(fs.readFileSync(counter, 'utf8'))
  fs.writeFileSync(counter, String(n + 1))
}

const commands = {
  cycle({ n }) {
    const t0 = now()
    for (let i = 0; i < n; i++) lib.release(lib.tryAcquire())
    return { ns: Number(now() - t0) / n }
  },
  failedTry({ n }) {
    let holder = null
    const t0 = now()
    for (let i = 0; i < n; i++) holder = lib.failedTry()
    return { ns: Number(now() - t0) / n, holder }
  },
  hold() {
    held = lib.tryAcquire()
    if (held === null) throw new Error('hold: the lock is not free')
    return { pid: process.pid }
  },
  async release({ delay }) {
    // A random hold time meets a polling waiter at a random point of its
    // poll period instead of always right after a poll.
    if (delay > 0) await new Promise((r) => setTimeout(r, delay))
    const h = held
    held = null
    const t0 = now()
    await lib.release(h)
    return { t0 }
  },
  wait({ id, acquiredId }) {
    lib
      .wait(() => send({ id, waiting: true }))
      .then(
        (h) => {
          const t1 = now()
          held = h
          send({ id: acquiredId, t1 })
        },
        (err) => send({ id: acquiredId, error: String(err && err.stack) }),
      )
    return undefined
  },
  cpu() {
    const u = process.cpuUsage()
    return { cpuUs: u.user + u.system, t: now() }
  },
  async contend({ n, counter, limitMs }) {
    const t0 = now()
    const deadline = t0 + BigInt(limitMs) * 1000000n
    let count = 0
    while (count < n && now() < deadline) {
      const h = await lib.wait(() => {})
      increment(counter)
      await lib.release(h)
      count++
    }
    return { count, t0, t1: now() }
  },
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('close', () => process.exit(0)) // the runner went away
rl.on('line', async (line) => {
  const msg = JSON.parse(line)
  if (msg.cmd === 'exit') process.exit(0)
  try {
    const r = await commands[msg.cmd](msg)
    if (r !== undefined) send({ id: msg.id, ...r })
  } catch (err) {
    send({ id: msg.id, error: String(err && err.stack) })
  }
})
send({ id: 0, ready: true, pid: process.pid, dir: path.resolve(dir) })
