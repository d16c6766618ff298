import { join } from 'node:path'
import nodeGypBuild from 'node-gyp-build'

// The addon is loaded once, from the package root (node-gyp-build reads
// package.json, build/ and prebuilds/ there), by the one CommonJS build that
// both the `import` and the `require` entry points share.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const native: any = nodeGypBuild(join(__dirname, '..'))
