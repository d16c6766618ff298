import type { Location } from '../core/backend.js'
import type { Holding } from '../core/lock.js'
import { makeRecord } from '../core/record.js'
import { hostName } from '../core/speed.js'
import { backend } from '../backends/index.js'
import { loadMessages } from '../messages/load.js'

/**
 * What a `Lock` of this machine asks of its backend (core/lock.ts `Holding`):
 * the backend's own operations, records with this host's name, and messages
 * through the messages bundle, loaded on first use.
 */
export const local: Holding<Location> = {
  record: (loc, data, at, pid, ready) => makeRecord(hostName(), loc, data, at, pid, ready),
  update: (loc, handle, record) => backend.update(loc, handle, record),
  release: (loc, handle, shared) => backend.release(loc, handle, shared),
  listen: (loc, handler) => loadMessages().listen(loc, handler),
}
if (backend.lost !== undefined) local.lost = (loc, handle) => backend.lost!(loc, handle)
if (backend.descriptor !== undefined) local.descriptor = (handle) => backend.descriptor!(handle)
