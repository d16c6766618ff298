import { isAbsolute } from 'node:path'
import type { Location } from './backend.js'
import { canonicalKey, keyHash } from './identity.js'
import { backend } from './platform.js'
import type { Identity } from './validate.js'

// Where a keyless lock lives depends only on its name, scope and directory
// (unless that directory is relative to a cwd that may change): remember it,
// by scope, then directory, then name (no key string is built per call).
const located = new Map<string, Map<string, Map<string, Location>>>()
let size = 0

/** Where a validated identity's lock lives; touches nothing but the key's path. */
export function locateIdentity(id: Identity): Location {
  if (id.key === undefined && (id.dir === undefined || isAbsolute(id.dir))) {
    let byDir = located.get(id.scope)
    if (byDir === undefined) located.set(id.scope, (byDir = new Map()))
    const dirKey = id.dir ?? ''
    let byName = byDir.get(dirKey)
    if (byName === undefined) byDir.set(dirKey, (byName = new Map()))
    let loc = byName.get(id.name)
    if (loc === undefined) {
      if (size >= 1024) {
        located.clear()
        size = 0
        return locateIdentity(id)
      }
      loc = backend.locate({ name: id.name, key: undefined, keyHash: undefined, scope: id.scope, dir: id.dir })
      byName.set(id.name, loc)
      size++
    }
    return loc
  }
  const key = id.key === undefined ? undefined : canonicalKey(id.key)
  return backend.locate({ name: id.name, key, keyHash: key === undefined ? undefined : keyHash(key), scope: id.scope, dir: id.dir })
}
