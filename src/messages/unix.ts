import { chmodSync, lstatSync, renameSync, unlinkSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'
import { join } from 'node:path'
import type { PosixAddon } from '../backends/addon.js'
import { DATA, Decoder, FrameError, HELLO } from './frame.js'
import { parseRequest } from './queue.js'
import type { HandlerQueue } from './queue.js'

/**
 * Unix: the endpoint is a stream socket beside the lock file, in the same
 * directory (the user scope's is private to its user: nobody else can
 * connect, plant or replace anything there). It is never trusted for being
 * at its path:
 * - the holder binds a temporary name and renames it over the final one,
 *   atomically, so a leftover socket of a crashed holder (or anything
 *   planted) is replaced only by the process that holds the lock, and a
 *   sender never finds the path missing or half made;
 * - a sender checks that the process listening is the lock's holder (Linux:
 *   the server's pid, from SO_PEERCRED, holds the flock as the kernel shows
 *   it; elsewhere its uid owns the lock file) before it writes a byte;
 * - the holder checks each peer's uid (user scope: the same user only) and
 *   reports its pid and uid as the kernel recorded them at connect().
 */

interface PosixLoc {
  dir: string
  file: string
  path: string
  scope: 'user' | 'machine'
}

// sun_path holds 108 bytes with the terminating NUL (Linux; 104 on macOS
// and the BSDs, where the limit is checked against their size).
const SUN_PATH = process.platform === 'linux' ? 107 : 103

/**
 * The socket's name in the lock's directory: the lock file's, `.lock` made
 * `.sock` (never a lock file's name, which ends in `.lock`). Names of locks
 * with long names and keys (up to 115 bytes) would leave no room for the
 * directory, so those are cut and tagged with a hash of the whole name.
 */
function socketName(loc: PosixLoc, sha256: (s: string) => string): string {
  const base = loc.file.slice(0, -'.lock'.length)
  if (base.length <= 48) return `${base}.sock`
  return `${base.slice(0, 32)}~${sha256(loc.file).slice(0, 16)}.sock`
}

/**
 * A path that reaches `name` in `dir` within sun_path's limit: the path
 * itself when short enough; on Linux otherwise `/proc/self/fd/<fd>/<name>`
 * through a descriptor of the directory, which the caller closes once
 * bound or connected. Never a truncated path, which would name another file.
 */
function reach(native: PosixAddon, dir: string, name: string): { path: string; fd: number } {
  const full = join(dir, name)
  if (Buffer.byteLength(full) <= SUN_PATH) return { path: full, fd: -1 }
  if (process.platform === 'linux') {
    const fd = native.openDir(dir)
    const path = `/proc/self/fd/${fd}/${name}`
    if (Buffer.byteLength(path) <= SUN_PATH) return { path, fd }
    native.close(fd)
  }
  const err = new Error(
    `ENAMETOOLONG: the message socket ${full} is ${Buffer.byteLength(full)} bytes, over the ${SUN_PATH} a Unix socket path may have; use a shorter \`dir\``,
  ) as NodeJS.ErrnoException
  err.code = 'ENAMETOOLONG'
  err.path = full
  throw err
}

function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' ? fd : -1
}

// How long a connection may take to deliver its request: a peer that sends
// nothing, or half a frame, is dropped after this.
export const REQUEST_DEADLINE = 2000

export interface Endpoint {
  close(): void
}

/**
 * The endpoint could not be set up (its directory gone, a name that cannot
 * be replaced or is squatted): the lock is held all the same, senders find
 * no listener, and the program is told.
 */
export function noEndpoint(what: string, err: unknown): void {
  process.emitWarning(`instance-lock: ${what} accepts no messages: ${(err as Error).message}`, { code: 'INSTANCE_LOCK_NO_ENDPOINT' })
}

/** Listens for `queue` at `loc`'s socket; see noEndpoint for failures. */
export function listenUnix(native: PosixAddon, loc: PosixLoc, queue: HandlerQueue): Endpoint {
  const name = socketName(loc, (text) => native.sha256(text))
  const temp = `.${name.slice(0, -'.sock'.length)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`
  const uid = process.geteuid!()
  const sockets = new Set<Socket>()
  let closed = false
  let bound: { ino: number; dev: number } | undefined
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => accept(socket))
  server.unref()

  const fail = (err: unknown): void => {
    if (closed) return
    close()
    noEndpoint(loc.path, err)
  }

  let r: { path: string; fd: number }
  try {
    r = reach(native, loc.dir, temp)
  } catch (err) {
    process.nextTick(fail, err)
    return { close }
  }
  // Before listening (bind) or after (accept, out of descriptors): either
  // way the endpoint is given up, said once.
  server.on('error', (err) => {
    if (r.fd >= 0) {
      native.close(r.fd)
      r.fd = -1
    }
    fail(err)
  })
  server.listen(r.path, () => {
    const final = r.fd >= 0 ? `/proc/self/fd/${r.fd}/${name}` : join(loc.dir, name)
    const tempPath = r.fd >= 0 ? r.path : join(loc.dir, temp)
    try {
      if (!closed) {
        // connect() needs write permission on the socket: every local user
        // in machine scope (the handler gets their uid), the owner otherwise.
        chmodSync(tempPath, loc.scope === 'machine' ? 0o666 : 0o600)
        renameSync(tempPath, final)
        const st = lstatSync(final)
        bound = { ino: st.ino, dev: st.dev }
      } else unlinkSync(tempPath)
    } catch (err) {
      try {
        unlinkSync(tempPath)
      } catch {
        // renamed after all, or gone with its directory
      }
      fail(err)
    } finally {
      if (r.fd >= 0) {
        native.close(r.fd)
        r.fd = -1
      }
    }
  })

  function accept(socket: Socket): void {
    if (closed) return void socket.destroy()
    let pid: number
    let peerUid: number
    try {
      ;[pid, peerUid] = native.peerCred(fdOf(socket))
    } catch {
      return void socket.destroy()
    }
    // User scope: the directory already keeps other users out; the uid check
    // is what holds if it is ever opened up. No pid: nothing to report.
    if ((loc.scope === 'user' && peerUid !== uid) || pid <= 0) return void socket.destroy()
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const deadline = setTimeout(() => socket.destroy(), REQUEST_DEADLINE)
    deadline.unref()
    const decoder = new Decoder([HELLO, DATA])
    const frames: Buffer[] = []
    let queued = false
    socket.on('data', (chunk: Buffer) => {
      // Nothing may follow a request: a sender waits for its reply.
      if (queued) return void socket.destroy()
      let got
      try {
        got = decoder.push(chunk)
      } catch (err) {
        if (err instanceof FrameError) return void socket.destroy()
        throw err
      }
      for (const f of got) {
        // HELLO, then DATA, then nothing.
        if (f.type !== (frames.length === 0 ? HELLO : DATA) || frames.length === 2) return void socket.destroy()
        frames.push(f.payload)
      }
      if (frames.length < 2) return
      clearTimeout(deadline)
      if (decoder.pending !== 0) return void socket.destroy()
      const message = parseRequest(frames[0]!, frames[1]!, pid, peerUid)
      if (message === undefined) return void socket.destroy()
      queued = true
      queue.push({
        message,
        // A sender that gave up (timed out, aborted) has closed its end; it is
        // kept reading for exactly that.
        alive: () => !socket.destroyed,
        answer: (frame) => {
          socket.end(frame)
        },
      })
    })
    // The sender never half-closes: an end is a sender gone, before or after its request.
    socket.once('end', () => socket.destroy())
  }

  function close(): void {
    if (closed) return
    closed = true
    queue.close()
    server.close()
    for (const s of sockets) s.destroy()
    sockets.clear()
    // Only our own socket: nobody else replaces it while we hold the lock,
    // but check rather than assume.
    if (bound !== undefined) {
      // lstat and unlink take a path of any length; only bind and connect are limited.
      const final = join(loc.dir, name)
      try {
        const st = lstatSync(final)
        if (st.ino === bound.ino && st.dev === bound.dev) unlinkSync(final)
      } catch {
        // gone already, or the directory with it
      }
    }
  }

  return { close }
}

/**
 * Connects to `loc`'s socket and checks that the holder listens there:
 * the socket, or null when there is no endpoint that is the holder's (none
 * yet, a leftover of a dead holder, a socket nobody holding the lock made).
 * Rejects only for what retrying cannot change (a path too long).
 */
export function connectUnix(native: PosixAddon, loc: PosixLoc, isHolder: (pid: number, uid: number) => boolean, timeout: number): Promise<Socket | null> {
  const name = socketName(loc, (text) => native.sha256(text))
  const r = reach(native, loc.dir, name)
  return new Promise((resolve) => {
    const socket = connect({ path: r.path, allowHalfOpen: true })
    const timer = setTimeout(() => done(null), timeout)
    const done = (ok: Socket | null): void => {
      clearTimeout(timer)
      if (r.fd >= 0) {
        native.close(r.fd)
        r.fd = -1
      }
      socket.removeListener('error', onError)
      if (ok === null) socket.destroy()
      resolve(ok)
    }
    const onError = (): void => done(null)
    socket.once('error', onError)
    socket.once('connect', () => {
      let pid: number
      let uid: number
      try {
        ;[pid, uid] = native.peerCred(fdOf(socket))
      } catch {
        return done(null)
      }
      done(isHolder(pid, uid) ? socket : null)
    })
  })
}
