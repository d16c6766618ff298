import path from 'node:path'

/**
 * The compiler options a TypeScript consumer of the packed package is
 * checked with (test/packaging.test.ts, test/postgres/entrypoint.test.ts):
 * strict, and the shipped .d.ts files checked themselves, not only their use.
 */
export function consumerCompilerOptions(module: string, moduleResolution: string): Record<string, unknown> {
  return {
    module,
    moduleResolution,
    target: 'ES2022',
    lib: ['ES2022', 'ESNext.Disposable'],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [path.resolve(__dirname, '..', '..', 'node_modules', '@types')],
  }
}
