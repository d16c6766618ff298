import type { Backend } from '../core/backend.js'
import { entriesOf, makeDirs } from '../core/backend.js'
import { native } from './addon.js'
import { abortError, systemError } from '../core/errors.js'
import { keyHash } from '../core/speed.js'
import { registry } from '../core/lock.js'
import { posix } from './flock/index.js'
import { createWaits } from '../core/waiter.js'
import { recordedProcess, withProcessStart } from '../core/record.js'

// The Windows backend is a separate file (dist/win32.js), required only on
// Windows.
export const backend: Backend =
  native.platform === 'win32'
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./win32.js') as typeof import('./win32-mutex/index.js')).createWin32({
        native,
        registry,
        createWaits,
        abortError,
        systemError,
        keyHash,
        entriesOf,
        makeDirs,
        withProcessStart,
        recordedProcess,
      })
    : posix
