/**
 * The package's library entry (`require('cdp-lifecycle')`), for hosts that embed a part instead of running the
 * CLI: each part is a namespace of its own, so their names never collide and the CLI's lazy loading of parts
 * (src/cli/parts.ts) stays the CLI's concern.
 */
export * as collector from './collector';
export * as runner from './runner';
export * as sync from './sync';
export * as warehouse from './warehouse';
export * as report from './report';
