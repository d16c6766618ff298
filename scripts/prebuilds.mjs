// What the committed prebuilds must be: which targets, built from which
// sources, for which CPU, needing what from the machine that loads them.
// Shared by scripts/prebuild.mjs (refuses to install a bad binary into
// prebuilds/) and test/packaging.test.ts (checks what the tarball ships).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

/**
 * The platforms the package ships a prebuild for, as prebuilds/<platform>-<arch>.
 * `npm run build:prebuilds` builds these and the packaging test requires each.
 */
export const PREBUILD_TARGETS = ['linux-x64', 'linux-arm64', 'win32-x64']

/**
 * Which sources each committed prebuild was built from: one line
 * `<sha256> <target>`. Not shipped (package.json "files"); it lets the
 * packaging test catch a native change that was committed without
 * rebuilding the prebuilds, which every other test would miss because they
 * load build/Release.
 */
export const SOURCES_FILE = 'prebuilds/SOURCES.sha256'

/** A digest of everything that goes into a prebuild, relative to the package root. */
export function sourcesDigest(root) {
  const files = ['binding.gyp', 'scripts/glibc-compat.h']
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`
      if (e.isDirectory()) walk(rel)
      else files.push(rel)
    }
  }
  walk('native')
  const hash = createHash('sha256')
  for (const f of files.sort())
    hash
      .update(`${f}\0`)
      .update(fs.readFileSync(path.join(root, f)))
      .update('\0')
  return hash.digest('hex')
}

/** The digest recorded for each target in SOURCES_FILE. */
export function recordedDigests(root) {
  const file = path.join(root, SOURCES_FILE)
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  return Object.fromEntries(
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ').reverse()),
  )
}

export function recordDigest(root, target, digest) {
  const all = { ...recordedDigests(root), [target]: digest }
  const lines = Object.keys(all)
    .sort()
    .map((t) => `${all[t]} ${t}\n`)
  fs.writeFileSync(path.join(root, SOURCES_FILE), lines.join(''))
}

/**
 * The newest symbol versions the official Node 20 Linux binaries (x64 and
 * arm64) themselves require, read from them with `readelf -V`. A prebuild
 * that needs nothing newer loads wherever the Node it targets runs
 * (glibc 2.28: RHEL 8, Debian 10, Ubuntu 18.10 and later).
 */
export const LINUX_CEILINGS = { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' }

/**
 * DLLs every Windows 10+ installation has in System32. The addon may import
 * these and node.exe; anything else (libstdc++-6.dll, libwinpthread-1.dll,
 * a VC++ redistributable) would be missing on a user's machine.
 */
const WINDOWS_SYSTEM_DLLS = new Set([
  'kernel32.dll',
  'advapi32.dll',
  'ntdll.dll',
  'msvcrt.dll',
  'ucrtbase.dll',
  'user32.dll',
  'shell32.dll',
  'ole32.dll',
  'bcrypt.dll',
  'ws2_32.dll',
  'psapi.dll',
])

const ELF_MACHINES = { 0x3e: 'x64', 0xb7: 'arm64' }
const PE_MACHINES = { 0x8664: 'x64', 0xaa64: 'arm64' }

/**
 * Reads the executable format and CPU from the file header, without tools:
 * `{ platform: 'linux' | 'win32', arch: 'x64' | 'arm64' | 'unknown (0x..)' }`.
 * Throws for anything that is neither ELF nor PE.
 */
export function binaryTarget(file) {
  const fd = fs.openSync(file, 'r')
  try {
    const head = Buffer.alloc(4096)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    if (n >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
      // e_machine; every ELF target we ship is little-endian.
      const m = head.readUInt16LE(18)
      return { platform: 'linux', arch: ELF_MACHINES[m] ?? `unknown (0x${m.toString(16)})` }
    }
    if (n >= 0x40 && head.toString('latin1', 0, 2) === 'MZ') {
      const pe = head.readUInt32LE(0x3c)
      if (pe + 6 <= n && head.toString('latin1', pe, pe + 4) === 'PE\0\0') {
        const m = head.readUInt16LE(pe + 4)
        return { platform: 'win32', arch: PE_MACHINES[m] ?? `unknown (0x${m.toString(16)})` }
      }
    }
    throw new Error(`${file} is neither an ELF shared object nor a PE DLL`)
  } finally {
    fs.closeSync(fd)
  }
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/**
 * The newest version the ELF file needs of each versioned library
 * interface, e.g. `{ GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' }`.
 */
export function elfNeededVersions(file) {
  // readelf reads any ELF machine, so the host's binutils do for arm64 too.
  const out = execFileSync('readelf', ['-V', '--wide', file], { encoding: 'utf8' })
  const needs = out.slice(out.indexOf('.gnu.version_r'))
  const newest = {}
  for (const [, lib, version] of needs.matchAll(/Name: ([A-Z]+)_([0-9][0-9.]*)\s/g)) {
    if (newest[lib] === undefined || compareVersions(version, newest[lib]) > 0) newest[lib] = version
  }
  return newest
}

/** Versions in `needed` newer than `LINUX_CEILINGS`, as `['GLIBC_2.33 > 2.28']`. */
export function linuxVersionViolations(needed) {
  return Object.entries(needed)
    .filter(([lib, v]) => LINUX_CEILINGS[lib] !== undefined && compareVersions(v, LINUX_CEILINGS[lib]) > 0)
    .map(([lib, v]) => `${lib}_${v} > ${LINUX_CEILINGS[lib]}`)
}

/** DLL names the PE file imports, normally or delay-loaded, as written. */
export function peImports(file) {
  // The host objdump reads pei-x86-64; the mingw one is used when present
  // because the two are not guaranteed to be configured alike.
  const objdump = hasCommand('x86_64-w64-mingw32-objdump') ? 'x86_64-w64-mingw32-objdump' : 'objdump'
  const out = execFileSync(objdump, ['-p', file], { encoding: 'utf8', maxBuffer: 256 << 20 })
  return [...new Set([...out.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]))]
}

/** Imports other than Windows system DLLs and node.exe. */
export function peImportViolations(imports) {
  return imports.filter((dll) => {
    const lower = dll.toLowerCase()
    return lower !== 'node.exe' && !WINDOWS_SYSTEM_DLLS.has(lower) && !lower.startsWith('api-ms-win-')
  })
}

function hasCommand(name) {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The reasons `file` must not ship as prebuilds/`target` (e.g. 'linux-arm64'); empty when it may. */
export function prebuildProblems(file, target) {
  const [platform, arch] = target.split('-')
  const found = binaryTarget(file)
  if (found.platform !== platform || found.arch !== arch) return [`is built for ${found.platform}-${found.arch}, not ${target}`]
  if (platform === 'linux') return linuxVersionViolations(elfNeededVersions(file)).map((v) => `needs ${v}`)
  return peImportViolations(peImports(file)).map((dll) => `imports ${dll}, which is not a Windows system DLL`)
}
