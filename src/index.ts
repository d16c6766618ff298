// The package's entry: the public API (src/api/). See docs/architecture.md for the layout.
export * from './api/index.js'
