import type { Location } from './backend.js'
import { primaryLock, type Lock } from './lock.js'
import { backend } from '../backends/index.js'
import { local } from '../api/holding.js'
import { parseRecord } from './record.js'
import type { Holder } from '../api/types.js'

/**
 * The guard in a `node:cluster` worker. A program whose first line is
 * `singleInstance()` runs it in the primary, which takes the lock, and again
 * in every worker it forks, where the lock is held: by the worker's own
 * primary, which is the same instance, not a second one. There the worker
 * gets a `Lock` that stands for the primary's hold (`clusterPrimary`), and
 * goes on. Undefined anywhere else (not a worker, or held by another
 * process: a second instance's workers never start, as its primary exits).
 *
 * Asked only once the lock is found held, so the guard that takes the lock
 * never pays for it. Node deletes NODE_UNIQUE_ID, its own mark of a worker,
 * before any user code runs, and node:cluster is already loaded in a worker:
 * a process with no IPC channel is no worker, and only one with a channel
 * asks node:cluster. The primary must hold the lock right now, as the
 * operating system proves (Linux: /proc; Windows: the mutex's owner); where
 * it cannot (macOS, the BSDs), the record of the held lock must name the
 * primary. pm2's cluster mode forks the workers from its daemon, which holds
 * nothing: there the first worker holds the lock and the others conflict.
 */
export function heldByPrimary(loc: Location, holder?: Holder): Lock | undefined {
  if (process.send === undefined || !(require('node:cluster') as typeof import('node:cluster').default).isWorker) return undefined
  if (holder === undefined) {
    const p = backend.probe(loc)
    if (p === null || !p.held) return undefined
    holder = parseRecord(p.record, loc)
    if (holder === undefined) return undefined
  }
  const primary = process.ppid
  const proven = backend.holders(loc)
  const held = proven.length > 0 ? proven.includes(primary) : !backend.provesHolders && holder.pid === primary
  return held ? primaryLock(loc, { ...holder, pid: primary }, local) : undefined
}
