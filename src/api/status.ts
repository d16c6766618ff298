import type { Location } from '../core/backend.js'
import { current } from '../core/holder.js'
import { registry } from '../core/lock.js'
import { backend } from '../backends/index.js'
import { parseRecord } from '../core/record.js'
import type { Holder, LockStatus } from './types.js'

export function statusOf(loc: Location, locked: boolean, holder: Holder | undefined): LockStatus {
  const s: LockStatus = { name: loc.name, scope: loc.scope, locked, path: loc.path }
  if (loc.key !== undefined) s.key = loc.key
  if (locked && holder !== undefined) s.holder = holder
  return s
}

/**
 * The lock's status, taking nothing: this process's own locks are answered
 * from the registry, others by the backend's probe, which never makes a
 * concurrent acquisition fail.
 */
export function statusAt(loc: Location): LockStatus {
  const own = registry.get(loc.id)
  if (own !== undefined) return statusOf(loc, true, own.holder)
  const p = backend.probe(loc)
  if (p === null || !p.held) return statusOf(loc, false, undefined)
  return statusOf(loc, true, current(loc, parseRecord(p.record, loc)))
}
