import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const REGISTER = path.join(__dirname, 'ts-register.js');

/** Spawns a TypeScript entry point of this repo (e.g. 'src/cli/run.ts') with node, from source. */
export function spawnTs(entry: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, ['-r', REGISTER, path.join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...options,
    env: { ...process.env, FORCE_COLOR: '0', ...(options.env ?? {}) },
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source (`src/cli/run.ts`) to completion and captures its output. */
export function runCli(
  args: string[],
  options: SpawnOptions & { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTs('src/cli/run.ts', args, options);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/**
 * Lands `events` (JSON lines) with `load -` and builds the models, through the CLI with `args` (the warehouse
 * and schemas); throws with the CLI's stderr when either fails.
 */
export async function loadAndBuild(args: string[], cwd: string, events: string[]): Promise<void> {
  for (const [cmd, input] of [
    [['load', '-', ...args], events.join('\n')],
    [['build', ...args], undefined],
  ] as const) {
    const r = await runCli([...cmd], { cwd, input });
    if (r.code !== 0) throw new Error(`${cmd[0]} exited ${String(r.code)}: ${r.stderr}`);
  }
}
