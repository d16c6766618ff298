// ESLint over the TypeScript sources and tests (with type information, from
// tsconfig.test.json, which covers both) and over the JavaScript around them
// (bin/, scripts/, bench/, examples/, test fixtures). Formatting is Prettier's
// job alone (npm run format), so no stylistic rules here.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// Node's globals for the JavaScript files (the TypeScript ones get them from
// @types/node). CommonJS files get require/module/exports from sourceType.
const node = Object.fromEntries(
  [
    'AbortController',
    'AbortSignal',
    'Buffer',
    'SharedArrayBuffer',
    'URL',
    'clearImmediate',
    'clearInterval',
    'clearTimeout',
    'console',
    'performance',
    'process',
    'queueMicrotask',
    'setImmediate',
    'setInterval',
    'setTimeout',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
)

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'dist.*/', 'build/', 'build-win32/', 'prebuilds/', '.cache/', 'bench/results/'],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { ecmaVersion: 2023, globals: node },
  },
  {
    files: ['**/*.cjs', 'bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { __dirname: 'readonly', __filename: 'readonly' } },
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Node's built-in modules are required where first needed, not
      // imported: the guard's start-up would pay for loading them. And
      // `import x = require()` is how a CommonJS consumer is typed.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^node:'], allowAsImport: true }],
      // Rejecting with what was caught passes the error on, as a rethrow does.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // In tests, vitest's asymmetric matchers (expect.any(), ...) and JSON
    // from child processes are `any` by design, and expect() checks them.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
)
