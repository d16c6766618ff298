// The backend the conformance scenarios drive, for the runner (harness.mjs)
// and its child processes (child.cjs) alike, chosen by the environment:
//
//   IL_BACKEND=local (default)  the package at IL_ROOT: flock, or named
//                               mutexes on Windows
//   IL_BACKEND=postgres         instance-lock/postgres on IL_POSTGRES_URL
//
// Both are driven through one object, `il`, with the local API's names. The
// PostgreSQL functions return promises where the local ones return at once;
// the scenarios await every call, which is the same for a value. What the
// API defines differently is said here, once:
//   released(lock)  resolves once another process can take the lock: a
//                   PostgreSQL release reaches the server a round trip later
//   queued(name, n) resolves once n waits for the lock are queued: a local
//                   lock() queues its wait in the call, a PostgreSQL one once
//                   its connection reaches the server
// Plain Node, so that it runs under Wine; pg is required only for postgres.
'use strict'
const path = require('node:path')
const { createRequire } = require('node:module')

// Node 20.0–20.3 predate Symbol.asyncDispose.
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

const LIMIT = 30_000

/** Releases `lock` and resolves once the release is complete, whether or not its class has asyncDispose. */
async function released(lock) {
  if (typeof lock[asyncDispose] === 'function') await lock[asyncDispose]()
  else lock.release()
}

/** Polls `f` every 20 ms until it is true; rejects after LIMIT ms: for server state that has no event. */
async function until(f, what) {
  const deadline = Date.now() + LIMIT
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${LIMIT} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function local(root) {
  return {
    kind: 'local',
    il: require(root),
    // tryLock, inspect and list answer synchronously, update() and ready() write before they return.
    sync: true,
    // Lock files, `dir` and `scope`, keys that are paths, the addon, messages, waitFor.
    files: true,
    addon: true,
    messages: true,
    waitFor: true,
    cluster: false,
    // The kernel frees a lock as its holder's process ends.
    freedAtExit: true,
    scope: 'user',
    released,
    queued: async () => {},
    close: async () => {},
  }
}

function postgresBackend(root) {
  const url = process.env.IL_POSTGRES_URL
  if (url === undefined || url === '') throw new Error('IL_BACKEND=postgres needs IL_POSTGRES_URL')
  const { postgres, LockedError } = require(path.join(root, 'postgres'))
  const on = (locks) => ({
    tryLock: (name, options) => locks.tryLock(name, options),
    lock: (name, options) => locks.lock(name, options),
    singleInstance: (name, options) => locks.singleInstance(name, options),
    inspect: (name, options) => locks.inspect(name, options),
    list: () => locks.list(),
    stop: (name, options) => locks.stop(name, options),
    LockedError,
  })
  const locks = postgres(url)
  const il = on(locks)
  // The test's own connection, for the server's lock table.
  let client
  async function waits(lockId) {
    if (client === undefined) {
      const { Client } = createRequire(path.join(root, 'package.json'))('pg')
      client = new Client({ connectionString: url, application_name: 'instance-lock-conformance' })
      await client.connect()
    }
    const r = await client.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND ((classid::int8 << 32) | objid::int8) = $1::int8`, [
      lockId,
    ])
    return r.rows[0].n
  }
  return {
    kind: 'postgres',
    il,
    sync: false,
    files: false,
    addon: false,
    messages: false,
    waitFor: false,
    // Holders and stop results name the host.
    cluster: true,
    // The server frees it once it sees the connection close.
    freedAtExit: false,
    scope: 'cluster',
    // The API on a server that is not there (nothing listens on port 1): a
    // call that connected would fail with ECONNREFUSED.
    offline: () => on(postgres('postgres://nobody@127.0.0.1:1/none')),
    released,
    async queued(name, n) {
      const lockId = (await il.inspect(name)).path.split('#advisory=')[1]
      await until(async () => (await waits(lockId)) >= n, `${n} waits for "${name}" queued on the server`)
    },
    async close() {
      await client?.end()
      await locks.close()
    },
  }
}

/** The backend IL_BACKEND names, loaded from the package at `root`. */
function load(root) {
  const kind = process.env.IL_BACKEND ?? 'local'
  if (kind === 'local') return local(root)
  if (kind === 'postgres') return postgresBackend(root)
  throw new Error(`IL_BACKEND=${kind}: expected local or postgres`)
}

module.exports = { load }
