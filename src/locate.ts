import type { Location } from './backend.js'
import { canonicalKey, keyHash } from './identity.js'
import { backend } from './platform.js'
import type { Identity } from './validate.js'

/** Where a validated identity's lock lives; touches nothing but the key's path. */
export function locateIdentity(id: Identity): Location {
  const key = id.key === undefined ? undefined : canonicalKey(id.key)
  return backend.locate({ name: id.name, key, keyHash: key === undefined ? undefined : keyHash(key), scope: id.scope, dir: id.dir })
}
