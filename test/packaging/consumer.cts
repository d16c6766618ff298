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
