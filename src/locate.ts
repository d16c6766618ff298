import path from 'node:path'
import type { Location } from './backend.js'
import { canonicalKey, keyHash } from './identity.js'
import { backend } from './platform.js'
import type { Identity } from './validate.js'

// Where a keyless lock lives depends only on its name, scope and directory
// (unless that directory is relative to a cwd that may change): remember it.
const located = new Map<string, Location>()

/** Where a validated identity's lock lives; touches nothing but the key's path. */
export function locateIdentity(id: Identity): Location {
  if (id.key === undefined && (id.dir === undefined || path.isAbsolute(id.dir))) {
    const memo = `${id.scope}\0${id.name}\0${id.dir ?? ''}`
    let loc = located.get(memo)
    if (loc === undefined) {
      if (located.size >= 1024) located.clear()
      loc = backend.locate({ name: id.name, key: undefined, keyHash: undefined, scope: id.scope, dir: id.dir })
      located.set(memo, loc)
    }
    return loc
  }
  const key = id.key === undefined ? undefined : canonicalKey(id.key)
  return backend.locate({ name: id.name, key, keyHash: key === undefined ? undefined : keyHash(key), scope: id.scope, dir: id.dir })
}
