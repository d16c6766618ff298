// Type-checked (never run) against the packed types, imported from ESM.
import { Lock, LockedError, inspect, list, lock, singleInstance, tryLock } from 'instance-lock'
import type { Holder, LockStatus } from 'instance-lock'

const held: Lock = tryLock('web', { scope: 'user', key: './data/app.sqlite', data: { port: 3000 } })
held.update({ port: 3001 })
const when: Date = held.acquiredAt
held.release()

{
  using scoped = tryLock('job')
  const released: boolean = scoped.released
  void released
}

const status: LockStatus = inspect('web', { scope: 'machine' })
const holder: Holder | undefined = status.holder
const waited: Promise<Lock> = lock('web', { timeout: 1000, signal: AbortSignal.timeout(2000) })
const guard: Lock = singleInstance('web', { onLocked: 'exit', exitCode: 3 })
const primary: number | undefined = guard.clusterPrimary
const replaced: Promise<Lock> = singleInstance('web', { onLocked: 'replace', timeout: 5000 })
const all: LockStatus[] = list({ scope: 'machine' })

try {
  tryLock('web')
} catch (err) {
  if (err instanceof LockedError) {
    const code: 'ELOCKED' = err.code
    const pid: number | undefined = err.holder?.pid
    void [code, pid]
  }
}

// @ts-expect-error a lock name is a string
tryLock(42)
// @ts-expect-error Locks come from tryLock(), lock() and singleInstance()
new Lock()
// @ts-expect-error the package's own, not part of its types
held.releaseShared()
// @ts-expect-error the package's own, not part of its types
void held.location
// @ts-expect-error there is no such scope
tryLock('web', { scope: 'session' })

void [when, holder, waited, guard, primary, replaced, all, held instanceof Lock]

// instance-lock/postgres, imported from ESM.
import { postgres, LockedError as ClusterLockedError, PostgresLock } from 'instance-lock/postgres'
import type { ClusterLockStatus, PostgresLocks } from 'instance-lock/postgres'

const locks: PostgresLocks = postgres({ connectionString: 'postgres://db/app', lostAfter: 5000, schema: 'locks' })
const clusterHeld: Promise<PostgresLock> = locks.tryLock('nightly-report', { key: 'eu-west', data: { host: 'a' } })
void clusterHeld.then((l) => {
  const fence: bigint = l.fence
  const lost: AbortSignal = l.signal
  const scope: 'cluster' = l.scope
  void [fence, lost, scope]
})
const clusterStatus: Promise<ClusterLockStatus> = locks.inspect('nightly-report', { key: 'eu-west' })
const stopped: Promise<{ stopped: boolean; pid?: number; hostname?: string; forced: boolean }> = locks.stop('nightly-report', { force: true })
void [clusterStatus, stopped, ClusterLockedError, locks.close()]
// @ts-expect-error a lock name is a string
void locks.tryLock(42)
