// npm run bench [-- --quick] [-- --dir DIR] [-- --no-save] [-- --only messages]
//
// Measures instance-lock side by side with its peers and with a C program
// making the bare system calls (the floor), all in one run. This machine's
// absolute times drift with whatever else runs on it, so everything is
// interleaved (each round visits every subject in a fresh random order),
// repeated, summarised by medians, and compared as ratios within the run.
// Processes synchronise over pipes, never by sleeping; cross-process latency
// is measured with CLOCK_MONOTONIC (process.hrtime.bigint()), which every
// process of the machine shares.
//
// Writes bench/results/<time>.{json,svg,md}; a full run also refreshes
// bench/latest.{json,svg,md}, which the README and docs/benchmarks.md show.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { renderChart } from './chart.mjs'
import { ESM_GUARD, renderTable } from './table.mjs'

const require = createRequire(import.meta.url)
const { LIBRARIES, SETTINGS } = require('./subjects.cjs')

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const save = !args.includes('--no-save')
const dirArg = args.indexOf('--dir')
const base = dirArg >= 0 ? path.resolve(args[dirArg + 1]) : os.tmpdir()
// `--only messages`: the message round trip alone, printed, not saved.
const onlyArg = args.indexOf('--only')
const only = onlyArg >= 0 ? args[onlyArg + 1] : undefined

// Sample counts. A full run takes a few minutes; --quick under one.
const P = quick
  ? { rounds: 7, batchMs: 8, warmMs: 150, handoff: 10, crash: 5, crashSlow: 1, idleMs: 2000, guard: 6, contendN: 200, contendRounds: 3, contendLimitMs: 8000, messages: 100 }
  : { rounds: 25, batchMs: 15, warmMs: 300, handoff: 40, crash: 20, crashSlow: 3, idleMs: 5000, guard: 25, contendN: 500, contendRounds: 7, contendLimitMs: 30000, messages: 300 }
// Libraries whose waiters poll and whose crash recovery waits for a stale
// timeout: their crash reps take ~10 s each, so fewer of them, concurrently.
const SLOW_CRASH = new Set(['proper-lockfile', 'lockfile'])
const FLOORS = ['floor-min', 'floor-protocol']

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const shuffle = (xs) => {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const log = (s) => process.stderr.write(s + '\n')

// ---------------------------------------------------------------------------
// Processes driven over stdin/stdout, one JSON line each way.

class Proc {
  constructor(cmd, argv, label) {
    this.label = label
    this.child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], cwd: here })
    this.nextId = 1
    this.pending = new Map()
    this.buffer = ''
    this.exited = new Promise((r) => this.child.on('exit', (code, signal) => r({ code, signal })))
    this.child.on('exit', () => {
      for (const [, p] of this.pending) p.reject(new Error(`${label} exited`))
      this.pending.clear()
    })
    this.child.stdout.on('data', (d) => {
      this.buffer += d
      let i
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, i))
        this.buffer = this.buffer.slice(i + 1)
        const p = this.pending.get(msg.id ?? 0)
        if (p === undefined) continue
        this.pending.delete(msg.id ?? 0)
        if (msg.error) p.reject(new Error(`${label}: ${msg.error}`))
        else p.resolve(msg)
      }
    })
  }
  expect(id) {
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }))
  }
  write(line) {
    this.child.stdin.write(line + '\n')
  }
  kill(signal) {
    this.child.kill(signal)
  }
}

class Worker extends Proc {
  constructor(library, dir) {
    super(process.execPath, [path.join(here, 'worker.cjs'), library, dir], library)
    this.library = library
    this.ready = this.expect(0)
  }
  static async start(library, dir) {
    const w = new Worker(library, dir)
    await w.ready
    return w
  }
  request(cmd, extra = {}) {
    const id = this.nextId++
    const p = this.expect(id)
    this.write(JSON.stringify({ cmd, id, ...extra }))
    return p
  }
  /** Starts a wait; resolves once the library is waiting, with the acquisition to come. */
  async startWait() {
    const id = this.nextId++
    const acquiredId = this.nextId++
    const waiting = this.expect(id)
    const acquired = this.expect(acquiredId)
    this.write(JSON.stringify({ cmd: 'wait', id, acquiredId }))
    await waiting
    return { acquired }
  }
  async stop() {
    this.write(JSON.stringify({ cmd: 'exit' }))
    await this.exited
  }
}

class Floor extends Proc {
  constructor(bin, dir) {
    super(bin, [dir], 'floor')
  }
  // The C floor answers in order and without ids.
  request(line) {
    const p = this.expect(0)
    this.write(line)
    return p
  }
  async stop() {
    this.child.stdin.end()
    await this.exited
  }
}

// ---------------------------------------------------------------------------
// The machine.

const FS_TYPES = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x6969: 'nfs', 0x2fc12fc1: 'zfs', 0xf2f52010: 'f2fs' }
function fsType(p) {
  try {
    const t = fs.statfsSync(p).type >>> 0
    return FS_TYPES[t] ?? `0x${t.toString(16)}`
  } catch {
    return 'absent'
  }
}

function machine() {
  const cpus = os.cpus()
  let cc = ''
  try {
    cc = execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  } catch {
    // No C compiler: the report says so by leaving it empty.
  }
  return {
    cpu: `${cpus[0]?.model.trim() ?? 'unknown'} × ${cpus.length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    cc,
    benchDir: base,
    fs: { bench: fsType(base), '/tmp': fsType('/tmp'), '/dev/shm': fsType('/dev/shm') },
    load: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
  }
}

function buildFloor() {
  const out = path.join(here, 'results', '.bin')
  fs.mkdirSync(out, { recursive: true })
  const bin = path.join(out, 'floor')
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, path.join(here, 'floor.c')], { stdio: 'inherit' })
  return bin
}

// ---------------------------------------------------------------------------
// Scenarios. Each returns { subject: { median, samples, ... } }.

/**
 * ns per operation, in-process loops (uncontended cycle, failed try). Batch
 * sizes are calibrated per subject, once it is warm, to about P.batchMs;
 * the warm-up batches are discarded; then P.rounds interleaved rounds.
 */
async function perOp(kind, workers, floor) {
  const run = {}
  for (const lib of LIBRARIES) run[lib] = (n) => workers[lib].request(kind, { n })
  const floorKind = kind === 'cycle' ? 'cycle' : 'fail'
  for (const f of FLOORS) run[f] = (n) => floor.request(`${floorKind} ${f === 'floor-min' ? 'min' : 'protocol'} ${n}`)
  const subjects = Object.keys(run)
  const n = {}
  const extra = {}
  for (const s of subjects) {
    // Calibrate on a warm subject: a first call pays one-time costs (a lock
    // directory's setup) and a JavaScript subject runs interpreted until V8
    // has seen its functions hot for a while (a few thousand calls); a
    // thousand-operation warm-up still measured that tiering, not the
    // library. So every subject, the C floor too, first runs for P.warmMs.
    await run[s](20)
    let r = await run[s](200)
    for (const end = performance.now() + P.warmMs; performance.now() < end;) {
      r = await run[s](Math.max(20, Math.round((P.batchMs * 1e6) / r.ns)))
    }
    n[s] = Math.max(20, Math.round((P.batchMs * 1e6) / r.ns))
  }
  const samples = Object.fromEntries(subjects.map((s) => [s, []]))
  for (let round = 0; round < P.rounds; round++) {
    for (const s of shuffle(subjects)) {
      const r = await run[s](n[s])
      samples[s].push(r.ns)
      if (r.holder !== undefined) extra[s] = { holderReported: r.holder !== null }
    }
  }
  // The ratio is the median of each round's ratio to that round's floor-min:
  // the machine's speed drifts over a run (by half, on a shared VM), and
  // within a round every subject runs within a few hundred milliseconds.
  const out = {}
  const floorMin = samples['floor-min']
  for (const s of subjects) {
    const ratios = samples[s].map((x, i) => x / floorMin[i])
    out[s] = { median: median(samples[s]), ratio: median(ratios), batch: n[s], samples: samples[s], ...extra[s] }
  }
  return out
}

const ms = (t1, t0) => Number(BigInt(t1) - BigInt(t0)) / 1e6
const randomDelay = () => Math.random() * 10

/** Handoff: the holder releases; ms until the waiting process holds it. */
async function handoff(pairs) {
  const samples = Object.fromEntries(LIBRARIES.map((l) => [l, []]))
  for (let rep = 0; rep < P.handoff; rep++) {
    for (const lib of shuffle(LIBRARIES)) {
      const [holder, waiter] = pairs[lib]
      await holder.request('hold')
      const { acquired } = await waiter.startWait()
      const { t0 } = await holder.request('release', { delay: randomDelay() })
      const { t1 } = await acquired
      samples[lib].push(ms(t1, t0))
      await waiter.request('release', { delay: 0 })
    }
  }
  return summarise(samples)
}

/** Crash recovery: the holder is SIGKILLed while a contender waits. */
async function crashRep(lib, dir, waiter) {
  const holder = await Worker.start(lib, dir)
  await holder.request('hold')
  const { acquired } = await waiter.startWait()
  await sleep(randomDelay())
  const t0 = process.hrtime.bigint()
  holder.kill('SIGKILL')
  const { t1 } = await acquired
  await holder.exited
  await waiter.request('release', { delay: 0 })
  return ms(t1, t0)
}

async function crash(libs, reps, dirs, waiters) {
  const samples = Object.fromEntries(libs.map((l) => [l, []]))
  for (let rep = 0; rep < reps; rep++) {
    for (const lib of shuffle(libs)) samples[lib].push(await crashRep(lib, dirs[lib], waiters[lib]))
  }
  return samples
}

/** Idle waiter: % of one core used by a process waiting on a held lock. */
async function idle(pairs) {
  const out = {}
  await Promise.all(
    LIBRARIES.map(async (lib) => {
      const [holder, waiter] = pairs[lib]
      await holder.request('hold')
      const { acquired } = await waiter.startWait()
      const a = await waiter.request('cpu')
      await sleep(P.idleMs) // the measurement window itself
      const b = await waiter.request('cpu')
      await holder.request('release', { delay: 0 })
      await acquired
      await waiter.request('release', { delay: 0 })
      const wallUs = ms(b.t, a.t) * 1000
      out[lib] = { median: (100 * (b.cpuUs - a.cpuUs)) / wallUs, windowMs: wallUs / 1000 }
    }),
  )
  return out
}

/**
 * Guard start-up: `node guard.cjs LIBRARY` vs `node guard.cjs bare`, as wall
 * time from spawn to exit, plus the in-process require + guard time, taken
 * after an empty module's require. Spawn times vary by tens of ms here, so
 * the wall difference is taken within each round (each library against that
 * round's bare run) and the median of those differences reported. Each
 * library is required by name from node_modules, as a program that
 * installed it does (instance-lock through its link to the checkout).
 * instance-lock is also taken through `import` (guard.mjs against
 * empty.mjs), by wall time only, and compared with its `require` in the
 * same round.
 */
async function guard(dirs) {
  const subjects = ['bare', ...LIBRARIES]
  const wall = Object.fromEntries([...subjects, ESM_GUARD, 'bare.mjs'].map((s) => [s, []]))
  const overBare = Object.fromEntries([...subjects, ESM_GUARD].map((s) => [s, []]))
  const overBareRatio = Object.fromEntries([...subjects, ESM_GUARD].map((s) => [s, []]))
  const inproc = Object.fromEntries(subjects.map((s) => [s, []]))
  const argv = (s) =>
    s === ESM_GUARD
      ? [path.join(here, 'guard.mjs'), dirs['instance-lock']]
      : s === 'bare.mjs'
        ? [path.join(here, 'empty.mjs')]
        : [path.join(here, 'guard.cjs'), s, dirs[s] ?? os.tmpdir()]
  const once = (s) =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint()
      const child = spawn(process.execPath, argv(s), { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.on('exit', (code) => {
        const t1 = process.hrtime.bigint()
        if (code !== 0) return reject(new Error(`guard ${s} exited with ${code}`))
        resolve({ wallMs: ms(t1, t0), netMs: out === '' ? NaN : JSON.parse(out).guardNs / 1e6 })
      })
    })
  for (const s of [...subjects, ESM_GUARD, 'bare.mjs']) await once(s) // warm the page cache
  for (let round = 0; round < P.guard; round++) {
    const bare = {}
    for (const b of shuffle(['bare', 'bare.mjs'])) bare[b] = (await once(b)).wallMs
    wall.bare.push(bare.bare)
    wall['bare.mjs'].push(bare['bare.mjs'])
    for (const s of shuffle([...LIBRARIES, ESM_GUARD])) {
      const r = await once(s)
      const bareMs = s === ESM_GUARD ? bare['bare.mjs'] : bare.bare
      wall[s].push(r.wallMs)
      overBare[s].push(r.wallMs - bareMs)
      overBareRatio[s].push(r.wallMs / bareMs)
      if (s !== ESM_GUARD) inproc[s].push(r.netMs)
    }
  }
  // As with contention, the machine's speed drifts between rounds: within a
  // round every library started back to back, so instance-lock's time over
  // each peer's is taken per round.
  const own = inproc['instance-lock']
  const out = {}
  for (const s of LIBRARIES) {
    out[s] = {
      median: median(inproc[s]),
      ownOverThis: median(own.map((t, i) => t / inproc[s][i])),
      wallMedian: median(wall[s]),
      wallOverBare: median(overBare[s]),
      wallOverBareRatio: median(overBareRatio[s]),
      samples: inproc[s],
      wallSamples: wall[s],
    }
  }
  out[ESM_GUARD] = {
    wallMedian: median(wall[ESM_GUARD]),
    wallOverBare: median(overBare[ESM_GUARD]),
    wallOverBareRatio: median(overBareRatio[ESM_GUARD]),
    // The whole process through `import` over the one through `require`.
    overRequire: median(wall[ESM_GUARD].map((t, i) => t / wall['instance-lock'][i])),
    wallSamples: wall[ESM_GUARD],
  }
  out.bare = { wallMedian: median(wall.bare) }
  out['bare.mjs'] = { wallMedian: median(wall['bare.mjs']) }
  return out
}

/** Contention: 4 processes × N cycles of lock, read-increment-write, unlock. */
async function contention(groups, dirs) {
  const out = {}
  for (const lib of LIBRARIES) out[lib] = { rates: [], violations: 0, runs: [] }
  for (let round = 0; round < P.contendRounds; round++) {
    for (const lib of shuffle(LIBRARIES)) {
      const counter = path.join(dirs[lib], 'counter')
      fs.writeFileSync(counter, '0')
      const rs = await Promise.all(groups[lib].map((w) => w.request('contend', { n: P.contendN, counter, limitMs: P.contendLimitMs })))
      const start = rs.map((r) => BigInt(r.t0)).reduce((a, b) => (a < b ? a : b))
      const end = rs.map((r) => BigInt(r.t1)).reduce((a, b) => (a > b ? a : b))
      const total = rs.reduce((a, r) => a + r.count, 0)
      const final = Number(fs.readFileSync(counter, 'utf8'))
      out[lib].rates.push(total / (ms(end, start) / 1000))
      out[lib].violations += total - final
      out[lib].runs.push({ counts: rs.map((r) => r.count), final, ms: ms(end, start) })
    }
  }
  // Rates drift with the machine from round to round; within a round every
  // library ran back to back, so instance-lock's rate over each peer's is
  // taken per round too.
  const own = out['instance-lock'].rates
  for (const lib of LIBRARIES) {
    out[lib].median = median(out[lib].rates)
    out[lib].ownOverThis = median(own.map((r, i) => r / out[lib].rates[i]))
  }
  return out
}

function summarise(samples) {
  const out = {}
  for (const [s, xs] of Object.entries(samples)) out[s] = { median: median(xs), samples: xs }
  return out
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Messages: send() → the holder's handler → its reply, against the same
// exchange over a bare Unix socket between the same two processes (one
// connection per round trip in both: connect, write, read, close). The
// sender is this process; rounds alternate the two in random order, and
// each sample is one round trip, summarised by its median.

async function messages(dir) {
  const { send } = require('instance-lock')
  const holder = new Proc(process.execPath, [path.join(here, 'message-holder.cjs'), dir], 'message holder')
  await holder.expect(0)
  const bareSock = path.join(dir, 'bare.sock')
  const bare = () =>
    new Promise((resolve, reject) => {
      const s = net.connect(bareSock)
      s.once('error', reject)
      s.once('connect', () => s.write('{"n":1}'))
      s.once('data', () => {
        s.destroy()
        resolve()
      })
    })
  const subjects = { send: () => send('bench-messages', { n: 1 }, { dir }), bare }
  const samples = { send: [], bare: [] }
  try {
    // Warm-up: the messages bundle loads, both paths get compiled.
    for (let i = 0; i < 20; i++) for (const f of Object.values(subjects)) await f()
    for (let round = 0; round < P.rounds; round++) {
      for (const k of shuffle(Object.keys(subjects))) {
        for (let i = 0; i < Math.ceil(P.messages / P.rounds); i++) {
          const t0 = process.hrtime.bigint()
          await subjects[k]()
          samples[k].push(Number(process.hrtime.bigint() - t0) / 1e6)
        }
      }
    }
  } finally {
    holder.child.stdin.end()
    await holder.exited
  }
  const sendMs = median(samples.send)
  const bareMs = median(samples.bare)
  return { sendMs, bareMs, ratio: sendMs / bareMs, n: samples.send.length }
}

/** bench/postgres.mjs, run as a process of its own (it starts its own server); its medians. */
function postgresBench() {
  try {
    const out = execFileSync(process.execPath, [path.join(here, 'postgres.mjs'), '--json', ...(quick ? ['--quick'] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    return JSON.parse(out.trim().split('\n').pop())
  } catch (err) {
    return { error: String(err.message).split('\n')[0] }
  }
}

async function main() {
  const started = Date.now()
  if (only === 'messages') {
    const tmp = fs.mkdtempSync(path.join(base, 'instance-lock-bench-'))
    try {
      log('message round trip …')
      const r = await messages(tmp)
      process.stdout.write(
        `message round trip (median of ${r.n}): send() → reply ${r.sendMs.toFixed(3)} ms; bare Unix socket ${r.bareMs.toFixed(3)} ms; ${r.ratio.toFixed(2)}× the bare round trip\n`,
      )
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
    return
  }
  const tmp = fs.mkdtempSync(path.join(base, 'instance-lock-bench-'))
  const dirs = {}
  for (const s of [...LIBRARIES, 'floor', 'bare']) fs.mkdirSync((dirs[s] = path.join(tmp, s)))
  const info = machine()
  log(`instance-lock bench${quick ? ' (quick)' : ''}: ${info.cpu}, ${info.os}, node ${info.node}`)
  log(`lock files in ${tmp} (${info.fs.bench}); /tmp is ${info.fs['/tmp']}, /dev/shm is ${info.fs['/dev/shm']}`)

  const floor = new Floor(buildFloor(), dirs.floor)
  // Per library: a pair (holder, waiter) and two more for contention.
  const groups = {}
  await Promise.all(LIBRARIES.map(async (lib) => (groups[lib] = await Promise.all([0, 1, 2, 3].map(() => Worker.start(lib, dirs[lib]))))))
  const pairs = Object.fromEntries(LIBRARIES.map((l) => [l, groups[l].slice(0, 2)]))
  const results = {}
  try {
    log('uncontended acquire + release …')
    results.cycle = await perOp('cycle', Object.fromEntries(LIBRARIES.map((l) => [l, pairs[l][1]])), floor)
    log('failed try on a lock held by another process …')
    await Promise.all(LIBRARIES.map((l) => pairs[l][0].request('hold')))
    results.failedTry = await perOp('failedTry', Object.fromEntries(LIBRARIES.map((l) => [l, pairs[l][1]])), floor)
    await Promise.all(LIBRARIES.map((l) => pairs[l][0].request('release', { delay: 0 })))
    log('handoff …')
    results.handoff = await handoff(pairs)
    log('crash recovery …')
    const fast = LIBRARIES.filter((l) => !SLOW_CRASH.has(l))
    const waiters = Object.fromEntries(LIBRARIES.map((l) => [l, pairs[l][1]]))
    const crashFast = await crash(fast, P.crash, dirs, waiters)
    log(`idle waiter CPU (${P.idleMs} ms), and crash recovery of the stale-timeout libraries alongside …`)
    // The idle waiters and the stale-timeout crash reps both spend their
    // time waiting: run them side by side, the crash reps on locks of their
    // own.
    const slow = LIBRARIES.filter((l) => SLOW_CRASH.has(l))
    const slowDirs = {}
    for (const l of slow) fs.mkdirSync((slowDirs[l] = path.join(tmp, `${l}-crash`)))
    const slowWaiters = Object.fromEntries(await Promise.all(slow.map(async (l) => [l, await Worker.start(l, slowDirs[l])])))
    const [idleResult, ...slowSamples] = await Promise.all([idle(pairs), ...slow.map((l) => crash([l], P.crashSlow, slowDirs, slowWaiters))])
    await Promise.all(Object.values(slowWaiters).map((w) => w.stop()))
    results.idle = idleResult
    results.crash = summarise(Object.assign(crashFast, ...slowSamples))
    log('guard start-up …')
    results.guard = await guard(dirs)
    log(`contention (4 processes × ${P.contendN} cycles) …`)
    results.contention = await contention(groups, dirs)
    log('message round trip …')
    fs.mkdirSync(path.join(tmp, 'messages'))
    results.messages = await messages(path.join(tmp, 'messages'))
    log('instance-lock/postgres (bench/postgres.mjs, an embedded server) …')
    results.postgres = postgresBench()
  } finally {
    await Promise.all([
      floor.stop(),
      ...Object.values(groups)
        .flat()
        .map((w) => w.stop()),
    ])
    fs.rmSync(tmp, { recursive: true, force: true })
  }

  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    command: quick ? 'npm run bench -- --quick' : 'npm run bench',
    durationS: Math.round((Date.now() - started) / 1000),
    machine: info,
    settings: SETTINGS,
    params: P,
    results,
  }
  const table = renderTable(report)
  process.stdout.write('\n' + table.text + '\n')
  if (save) {
    const outDir = path.join(here, 'results')
    fs.mkdirSync(outDir, { recursive: true })
    const stamp = report.date.replace(/[:.]/g, '-')
    const files = { json: JSON.stringify(report, null, 2) + '\n', svg: renderChart(report), md: table.markdown }
    for (const [ext, text] of Object.entries(files)) fs.writeFileSync(path.join(outDir, `${stamp}.${ext}`), text)
    if (!quick) for (const [ext, text] of Object.entries(files)) fs.writeFileSync(path.join(here, `latest.${ext}`), text)
    log(`results: bench/results/${stamp}.{json,svg,md}${quick ? '' : ' and bench/latest.{json,svg,md}'}`)
  }
  log(`${report.durationS} s`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
