import type { Socket } from 'node:net'
import type { Location } from '../backend.js'
import type { Win32Addon } from '../binding.js'
import { codedError } from './client.js'
import type { HandlerQueue } from './queue.js'
import type { Endpoint } from './unix.js'

// Windows: the endpoint is to be a named pipe named after the mutex, served
// by a thread of the addon's (Node's pipe server can set neither
// FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_REJECT_REMOTE_CLIENTS nor a DACL, nor
// tell a client's pid). Until that server exists, both ends say so
// instead of pretending.
function unsupported(): Error {
  return codedError('ENOTSUP', 'messages to the running instance are not available on Windows yet')
}

export function listenPipe(_native: Win32Addon, _loc: Location, _queue: HandlerQueue): Endpoint {
  throw unsupported()
}

export function connectPipe(_loc: Location, _timeout: number): Promise<Socket | null> {
  return Promise.reject(unsupported())
}
