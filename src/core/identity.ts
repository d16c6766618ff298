import { realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'

/**
 * The identity of a key. A key naming an existing file or directory becomes
 * its canonical path (absolute, symlinks resolved, case-folded where the file
 * system ignores case), so `./db.sqlite`, `/srv/app/db.sqlite` and a symlink
 * to it are one lock. A key written as a path (one with a path separator, not
 * starting with a URL scheme such as `postgres:`) to something that does not
 * exist yet becomes the canonical path it will have once made: its nearest
 * existing parent directory resolved, the rest appended. Any other key
 * (`eu-west`) is taken as written.
 */
export function canonicalKey(key: string): string {
  let real: string
  let probe: string
  try {
    real = probe = realpathSync.native(key)
  } catch {
    if (!isPathLike(key)) return key
    const p = throughParent(key)
    if (p === undefined) return key
    ;({ real, probe } = p)
  }
  if (process.platform === 'win32' || ignoresCase(probe)) real = real.toLowerCase()
  return real
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]+:/

function isSeparator(c: string | undefined): boolean {
  return c === '/' || (c === '\\' && process.platform === 'win32')
}

function isPathLike(key: string): boolean {
  if (SCHEME.test(key)) return false
  for (let i = 0; i < key.length; i++) if (isSeparator(key[i])) return true
  return false
}

/**
 * The canonical path of `key`, which does not exist: the realpath of its
 * longest existing prefix (looked up as written, so a symlink followed by
 * `..` goes where the kernel would go) and the remaining names; `probe` is
 * that existing prefix, where case sensitivity can be tested. Undefined when
 * not even the working directory exists.
 */
function throughParent(key: string): { real: string; probe: string } | undefined {
  for (let end = key.length; ;) {
    let cut = end - 1
    while (cut >= 0 && !isSeparator(key[cut])) cut--
    let parent: string | undefined
    try {
      parent = realpathSync.native(cut < 0 ? '.' : key.slice(0, cut + 1))
    } catch {
      if (cut < 0) return undefined
    }
    if (parent !== undefined) {
      const rest = key.slice(cut + 1)
      const real = resolve(parent, rest)
      // A missing directory's `..` is its parent, so `..` in what is missing
      // may lead back to existing names, which must be resolved in turn.
      if (/(^|[\\/])\.\.([\\/]|$)/.test(rest)) {
        try {
          const again = realpathSync.native(real)
          return { real: again, probe: again }
        } catch {
          return throughParent(real)
        }
      }
      return { real, probe: parent }
    }
    end = cut
  }
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
