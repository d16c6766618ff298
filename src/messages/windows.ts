import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { Location } from '../core/backend.js'
import type { Win32Addon } from '../backends/addon.js'
import { parseRequest } from './queue.js'
import type { HandlerQueue } from './queue.js'
import { REQUEST_DEADLINE, noEndpoint } from './unix.js'
import type { Endpoint } from './unix.js'

/**
 * Windows: the endpoint is a named pipe named after the lock's mutex
 * (`\\.\pipe\Local\instance-lock.<user SID>.<name>…` in user scope,
 * `\\.\pipe\Global\instance-lock.<name>…` in machine scope: pipes have no
 * namespaces of their own, so the mutex's name keeps the two apart). The
 * addon serves it (native/win32/pipe.cc): only the holder creates it, as its
 * first instance (FILE_FLAG_FIRST_PIPE_INSTANCE), with a DACL admitting the
 * user alone (user scope) or every local user (machine scope; none may add
 * instances), and PIPE_REJECT_REMOTE_CLIENTS. The client is Node's own pipe
 * client, after the addon has asked the kernel which process serves the
 * pipe (GetNamedPipeServerProcessId) and it proved to be the holder: a name
 * squatted before the holder could create it is never sent anything.
 */
function pipeName(loc: Location): string {
  return `\\\\.\\pipe\\${loc.path}`
}

export function listenPipe(native: Win32Addon, loc: Location, queue: HandlerQueue): Endpoint {
  let closed = false
  let id: number
  try {
    id = native.pipeListen(pipeName(loc), loc.scope === 'machine', REQUEST_DEADLINE, (conn, pid, hello, data) => {
      const message = parseRequest(hello, data, pid, undefined)
      // An empty answer closes the client's instance: the sender sees no reply.
      if (message === undefined) return void native.pipeReply(id, conn, Buffer.alloc(0))
      queue.push({ message, alive: () => !closed, answer: (frame) => void native.pipeReply(id, conn, frame) })
    })
  } catch (err) {
    noEndpoint(loc.path, err)
    return { close() {} }
  }
  return {
    close() {
      if (closed) return
      closed = true
      queue.close()
      native.pipeClose(id)
    },
  }
}

export function connectPipe(native: Win32Addon, loc: Location, isHolder: (pid: number) => boolean, timeout: number): Promise<Socket | null> {
  const name = pipeName(loc)
  const pid = native.pipeServerPid(name)
  if (pid === 0 || !isHolder(pid)) return Promise.resolve(null)
  return new Promise((resolve) => {
    const socket = connect({ path: name, allowHalfOpen: true })
    const done = (ok: Socket | null): void => {
      clearTimeout(timer)
      socket.removeListener('error', onError)
      if (ok === null) socket.destroy()
      resolve(ok)
    }
    const onError = (): void => done(null)
    const timer = setTimeout(() => done(null), timeout)
    socket.once('error', onError)
    socket.once('connect', () => done(socket))
  })
}
