import type { Location } from '../core/backend.js'
import { current } from '../core/holder.js'
import { locateIdentity } from '../core/locate.js'
import { registry } from '../core/lock.js'
import { backend } from '../backends/index.js'
import { parseRecord } from '../core/record.js'
import type { Holder, LockOptions, LockStatus, Scope } from './types.js'
import { checkIdentity } from './validate.js'

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

/**
 * The lock `name` and `options` name, as `inspect()` reports it (its key
 * canonical: `./db.sqlite` is named by its full path), without looking at
 * it: what words about a lock (`describeLock`, a suggested command) and a
 * comparison with `list()`'s entries need. Checks its arguments as
 * `inspect()` does and touches nothing but the key's path.
 */
export function identify(name: string, options?: LockOptions): { name: string; key: string | undefined; scope: Scope } {
  const loc = locateIdentity(checkIdentity(name, options))
  return { name: loc.name, key: loc.key, scope: loc.scope }
}
