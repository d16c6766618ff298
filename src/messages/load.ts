import { join } from 'node:path'
import type { Location } from '../core/backend.js'
import { native } from '../backends/addon.js'
import { abortError, invalidArgValue } from '../core/errors.js'
import { describeLock, registry } from '../core/lock.js'
import { backend } from '../backends/index.js'
import type { Messages } from './index.js'

// Part of the main bundle: hands the shared modules to the messages bundle
// (dist/messages/index.js), loaded on first use only.
let messages: Messages | undefined

export function loadMessages(): Messages {
  if (messages === undefined) {
    // This code runs bundled into dist/lib.js and dist/cli.js; the path is
    // built at run time so that the bundler leaves the file out.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(join(__dirname, 'messages', 'index.js')) as typeof import('./index.js')
    messages = m.createMessages({
      native,
      backend,
      // Linux: the taker, from /proc/locks, which every user may read; else
      // the descriptors of the process (a holder that inherited the lock),
      // which only its own user and root may read.
      heldBy: backend.heldBy === undefined ? undefined : (loc: Location, pid: number) => backend.heldBy!(loc, pid),
      ownsLock: (loc: Location) => registry.has(loc.id),
      abortError,
      invalidArgValue,
      describeLock,
    })
  }
  return messages
}
