import type { Backend } from './backend.js'
import { entriesOf, makeDirs } from './backend.js'
import { native } from './binding.js'
import { abortError, systemError } from './errors.js'
import { keyHash } from './identity.js'
import { registry } from './lock.js'
import { posix } from './posix.js'
import { createWaits } from './waiter.js'

// The Windows backend is a separate file (dist/win32.js), required only on
// Windows.
export const backend: Backend =
  native.platform === 'win32'
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./win32.js') as typeof import('./win32.js')).createWin32({ native, registry, createWaits, abortError, systemError, keyHash, entriesOf, makeDirs })
    : posix
