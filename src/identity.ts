import { realpathSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { native } from './binding.js'

/**
 * The identity of a key. A key naming an existing file or directory becomes
 * its canonical path (absolute, symlinks resolved, case-folded where the file
 * system ignores case), so `./db.sqlite`, `/srv/app/db.sqlite` and a symlink
 * to it are one lock. Any other key is taken as written.
 */
export function canonicalKey(key: string): string {
  let real: string
  try {
    real = realpathSync.native(key)
  } catch {
    return key
  }
  if (process.platform === 'win32' || ignoresCase(real)) real = real.toLowerCase()
  return real
}

/**
 * Short, portable, collision-resistant tag for a key in file and mutex names:
 * the first 128 bits of its SHA-256, from the addon (loading node:crypto
 * would cost a keyed lock's first use ~6 ms).
 */
export function keyHash(canonical: string): string {
  return (native.sha256(canonical) as string).slice(0, 32)
}

// Case-insensitive file systems (macOS APFS/HFS+ by default, Windows, Linux
// casefold directories): the same file answers to a differently-cased name.
// Probe with the first component that has letters, from the leaf upwards.
function ignoresCase(real: string): boolean {
  let p = real
  for (;;) {
    const base = basename(p)
    const flipped = flipCase(base)
    if (flipped !== base) {
      try {
        const a = statSync(p, { bigint: true })
        const b = statSync(join(dirname(p), flipped), { bigint: true })
        return a.ino === b.ino && a.dev === b.dev
      } catch {
        return false
      }
    }
    const parent = dirname(p)
    if (parent === p) return false
    p = parent
  }
}

function flipCase(s: string): string {
  let out = ''
  for (const ch of s) {
    const lo = ch.toLowerCase()
    out += lo === ch ? ch.toUpperCase() : lo
  }
  return out
}
