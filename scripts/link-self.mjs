// Links node_modules/instance-lock to this checkout, so that the examples,
// the benchmark and the tests find `instance-lock` by name as a program that
// installed it does. (package.json has no "exports" map, which is what would
// let a package require itself by name; see scripts/build-ts.mjs.)
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const link = path.join(root, 'node_modules', 'instance-lock')
let target
try {
  target = fs.readlinkSync(link)
} catch (err) {
  if (err.code !== 'ENOENT') throw new Error(`link-self: ${link} exists and is not a link to this checkout; remove it`, { cause: err })
}
if (target === undefined) {
  fs.mkdirSync(path.dirname(link), { recursive: true })
  fs.symlinkSync('..', link, 'junction')
} else if (path.resolve(path.dirname(link), target) !== root) {
  throw new Error(`link-self: ${link} points at ${target}, not at this checkout; remove it`)
}
