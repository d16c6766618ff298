export * from './dist/backends/postgres/index.js'
