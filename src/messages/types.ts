/** What the holder's handler gets: who sent it, as the OS reports the peer, and what. */
export interface InstanceMessage {
  /** The sender's `process.argv`, exactly. */
  argv: string[]
  /** The sender's working directory. */
  cwd: string
  /** The sender's pid, as the OS reports the peer (SO_PEERCRED, GetNamedPipeClientProcessId), not as it claims. */
  pid: number
  /** Unix: the sender's uid, from the OS. */
  uid?: number
  /** The JSON value the sender passed, if any. */
  data?: unknown
}

/** Handles one message; its (awaited) value is the JSON reply, a throw is the sender's `EREMOTE`. */
export type MessageHandler = (message: InstanceMessage) => unknown
