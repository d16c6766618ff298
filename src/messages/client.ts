import type { Socket } from 'node:net'
import { DATA, Decoder, ERROR, HELLO, MAX_PAYLOAD, REPLY, encode } from './frame.js'

// How long a sender waits before looking for the endpoint again, while the
// lock is held but nobody (yet) listens that is the holder.
const RETRY = 20

export function codedError(code: string, message: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string }
  err.code = code
  return err
}

/**
 * The sender's request: its argv and cwd, then `data` as JSON. Checked here,
 * before anything is sent: data that is no JSON value (a function, a bigint,
 * a cycle) or over the limit throws `invalid(reason)`.
 */
export function requestFrames(data: unknown, invalid: (name: string, reason: string) => Error): Buffer {
  let json: string | undefined
  if (data !== undefined) {
    try {
      json = JSON.stringify(data)
    } catch (err) {
      throw invalid('data', `must be JSON-serialisable (${(err as Error).message})`)
    }
    if (json === undefined) throw invalid('data', `must be JSON-serialisable, got a ${typeof data}`)
    const bytes = Buffer.byteLength(json)
    if (bytes > MAX_PAYLOAD) throw invalid('data', `must serialise to at most ${MAX_PAYLOAD} bytes of JSON, got ${bytes}`)
  }
  const hello = JSON.stringify({ argv: process.argv, cwd: process.cwd() })
  if (Buffer.byteLength(hello) > MAX_PAYLOAD) throw invalid('process.argv', `with the working directory must serialise to at most ${MAX_PAYLOAD} bytes of JSON`)
  return Buffer.concat([encode(HELLO, hello), encode(DATA, json ?? '')])
}

export interface Transport {
  /** Is the lock held (by anyone)? */
  held(): boolean
  /** The holder's endpoint, connected and verified, or null for none (yet). */
  connect(timeout: number): Promise<Socket | null>
}

/**
 * Sends `request` to the holder and resolves its reply. Until the deadline,
 * a held lock whose holder does not (yet) listen is looked at again: a
 * sender that finds the lock just taken, before its holder's endpoint is
 * up, is served once it is.
 */
export async function sendRequest(
  t: Transport,
  what: string,
  request: Buffer,
  timeout: number,
  signal: AbortSignal | undefined,
  aborted: (s: AbortSignal) => Error,
): Promise<unknown> {
  const deadline = Date.now() + timeout
  for (;;) {
    if (signal?.aborted) throw aborted(signal)
    const left = deadline - Date.now()
    // The endpoint is tried first: one that proves to be the holder's shows
    // the lock held, so the lock is looked at only when there is none.
    const socket = left > 0 ? await t.connect(left) : null
    if (socket !== null && signal?.aborted) socket.destroy()
    else if (socket !== null) return exchange(socket, what, request, deadline, signal, aborted)
    if (!t.held()) throw codedError('ENOTRUNNING', `${what} is not held: no instance is running`)
    if (deadline - Date.now() <= 0) throw codedError('ENOLISTENER', `${what} is held, but its holder accepts no messages`)
    await pause(Math.min(RETRY, Math.max(0, deadline - Date.now())), signal)
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done)
  })
}

function exchange(socket: Socket, what: string, request: Buffer, deadline: number, signal: AbortSignal | undefined, aborted: (s: AbortSignal) => Error): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const decoder = new Decoder([REPLY, ERROR])
    let settled = false
    const finish = (err: Error | undefined, value?: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err !== undefined) reject(err)
      else resolve(value)
    }
    const onAbort = (): void => finish(aborted(signal!))
    const timer = setTimeout(() => finish(codedError('ETIMEDOUT', `${what}: its holder did not reply in time`)), Math.max(0, deadline - Date.now()))
    signal?.addEventListener('abort', onAbort)
    socket.on('error', () => finish(codedError('ENOLISTENER', `${what}: its holder closed the connection without replying`)))
    socket.on('close', () => finish(codedError('ENOLISTENER', `${what}: its holder closed the connection without replying`)))
    socket.on('data', (chunk: Buffer) => {
      let frames
      try {
        frames = decoder.push(chunk)
      } catch {
        return finish(codedError('ENOLISTENER', `${what}: its holder sent a malformed reply`))
      }
      const f = frames[0]
      if (f === undefined) return
      const text = f.payload.toString('utf8')
      if (f.type === ERROR) return finish(codedError('EREMOTE', text))
      if (text === '') return finish(undefined, undefined)
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        return finish(codedError('ENOLISTENER', `${what}: its holder sent a malformed reply`))
      }
      finish(undefined, value)
    })
    socket.write(request)
  })
}
