import type { Backend } from './backend.js'
import { native } from './binding.js'
import { posix } from './posix.js'

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const backend: Backend = native.platform === 'win32' ? require('./win32.js').win32 : posix
