// Type-checked (never run) against the packed types, required from CommonJS.
import instanceLock = require('instance-lock')

const held: instanceLock.Lock = instanceLock.tryLock('web', { dir: '/tmp' })
const status: instanceLock.LockStatus = instanceLock.inspect('web')
const locked: boolean = status.locked
held[Symbol.dispose]()

const err: unknown = new Error('x')
if (err instanceof instanceLock.LockedError) {
  const code: 'ELOCKED' = err.code
  void code
}

// @ts-expect-error release() returns nothing
const nothing: number = held.release()

void [locked, nothing]

// instance-lock/postgres, required from CommonJS.
import clusterLocks = require('instance-lock/postgres')

const pgLocks: clusterLocks.PostgresLocks = clusterLocks.postgres('postgres://db/app')
void pgLocks.lock('job', { timeout: 1000, signal: AbortSignal.timeout(2000) }).then((l: clusterLocks.PostgresLock) => l.release())
const pgErr: unknown = new Error('x')
if (pgErr instanceof clusterLocks.LockedError) {
  const holderPid: number | undefined = pgErr.holder?.pid
  void holderPid
}
