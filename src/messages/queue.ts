import { ERROR, REPLY, encode, MAX_PAYLOAD } from './frame.js'
import type { InstanceMessage, MessageHandler } from './types.js'

/** A complete request, read and checked by an endpoint, waiting for its turn. */
export interface Request {
  message: InstanceMessage
  /** False once the sender has gone (gave up, timed out): its turn is skipped. */
  alive(): boolean
  /** Sends the answer frame and ends the exchange. */
  answer(frame: Buffer): void
}

/**
 * One holder's handler and its queue: one message at a time, in the order
 * the endpoint completed them. A slow handler delays the next sender (whose
 * own `timeout` bounds its wait); it never drops one.
 */
export class HandlerQueue {
  handler: MessageHandler
  #queue: Request[] = []
  #busy = false
  #closed = false

  constructor(handler: MessageHandler) {
    this.handler = handler
  }

  push(r: Request): void {
    if (this.#closed) return
    this.#queue.push(r)
    if (!this.#busy) void this.#drain()
  }

  /** Release: whatever is queued is never handled (its sender sees the endpoint close). */
  close(): void {
    this.#closed = true
    this.#queue.length = 0
  }

  async #drain(): Promise<void> {
    this.#busy = true
    try {
      for (let r = this.#queue.shift(); r !== undefined && !this.#closed; r = this.#queue.shift()) {
        if (!r.alive()) continue
        const frame = await answerOf(this.handler, r.message)
        if (!this.#closed && r.alive()) r.answer(frame)
      }
    } finally {
      this.#busy = false
    }
  }
}

/** The handler's value as a REPLY frame, or what it threw as an ERROR frame. */
async function answerOf(handler: MessageHandler, message: InstanceMessage): Promise<Buffer> {
  let value: unknown
  try {
    value = await handler(message)
  } catch (err) {
    return errorFrame(err instanceof Error ? err.message : String(err))
  }
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    return errorFrame(`the handler's reply is not JSON: ${(err as Error).message}`)
  }
  if (json === undefined) {
    if (value !== undefined) return errorFrame(`the handler's reply is not JSON: a ${typeof value}`)
    json = ''
  }
  if (Buffer.byteLength(json) > MAX_PAYLOAD) return errorFrame(`the handler's reply is over ${MAX_PAYLOAD} bytes of JSON`)
  return encode(REPLY, json)
}

function errorFrame(text: string): Buffer {
  // A message longer than a frame is cut: it is text for a person, not data.
  let t = text
  while (Buffer.byteLength(t) > MAX_PAYLOAD) t = t.slice(0, Math.floor(t.length / 2))
  return encode(ERROR, t)
}

/**
 * The request in a HELLO and a DATA payload, or undefined if either is not
 * what a sender writes: argv an array of strings, cwd a string, data empty
 * or JSON.
 */
export function parseRequest(hello: Buffer, data: Buffer, pid: number, uid: number | undefined): InstanceMessage | undefined {
  let h: unknown
  let d: unknown
  try {
    h = JSON.parse(hello.toString('utf8'))
    d = data.length === 0 ? undefined : JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
  if (h === null || typeof h !== 'object') return undefined
  const { argv, cwd } = h as { argv?: unknown; cwd?: unknown }
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string') || typeof cwd !== 'string') return undefined
  const message: InstanceMessage = { argv, cwd, pid }
  if (uid !== undefined) message.uid = uid
  if (data.length !== 0) message.data = d
  return message
}
