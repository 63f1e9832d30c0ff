import type { CommandSpec } from '../context';
import { serveCommand } from './serve';
import { loadCommand } from './load';
import { buildCommand, compileCommand, testCommand } from './models';
import { syncCommand } from './sync';
import { runCommand } from './run';
import { demoCommand } from './demo';
import { reportCommand } from './report';

/** Every command of SPEC §8, in the order `--help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  demoCommand,
  serveCommand,
  loadCommand,
  buildCommand,
  testCommand,
  compileCommand,
  syncCommand,
  runCommand,
  reportCommand,
];
