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
