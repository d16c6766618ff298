import { isAbsolute } from 'node:path'
import type { Location } from './backend.js'
import { canonicalKey } from './identity.js'
import { keyHash } from './speed.js'
import { backend } from '../backends/index.js'
import type { Identity } from '../api/validate.js'

// Where a keyless lock lives depends only on its name, scope and directory
// (unless that directory is relative to a cwd that may change): remember it,
// by scope, then directory, then name (no key string is built per call).
const located = new Map<string, Map<string, Map<string, Location>>>()
let size = 0

function namesIn(scope: string, dir: string): Map<string, Location> {
  let byDir = located.get(scope)
  if (byDir === undefined) located.set(scope, (byDir = new Map<string, Map<string, Location>>()))
  let byName = byDir.get(dir)
  if (byName === undefined) byDir.set(dir, (byName = new Map<string, Location>()))
  return byName
}

/** Where a validated identity's lock lives; touches nothing but the key's path. */
export function locateIdentity(id: Identity): Location {
  if (id.key === undefined && (id.dir === undefined || isAbsolute(id.dir))) {
    const dir = id.dir ?? ''
    let loc = namesIn(id.scope, dir).get(id.name)
    if (loc === undefined) {
      if (size >= 1024) {
        located.clear()
        size = 0
      }
      loc = backend.locate({ name: id.name, key: undefined, keyHash: undefined, scope: id.scope, dir: id.dir })
      namesIn(id.scope, dir).set(id.name, loc)
      size++
    }
    return loc
  }
  const key = id.key === undefined ? undefined : canonicalKey(id.key)
  return backend.locate({ name: id.name, key, keyHash: key === undefined ? undefined : keyHash(key), scope: id.scope, dir: id.dir })
}
