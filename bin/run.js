#!/usr/bin/env node
// Production entry point: runs the compiled commands in dist/.
//
// edgectl needs Node 22 (package.json engines) and depends on the npm package `node`, which installs
// a Node 22 binary next to it. When this script is started by an older Node (say the system's Node
// 20 through `npm install -g`'s shim), it runs itself again under that bundled Node instead of
// failing on a missing API later. This file must therefore parse on old Node too: nothing newer than
// top-level await before the version check, and @oclif/core is imported only after it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_MAJOR = 22;
const major = Number(process.versions.node.split('.')[0]);

if (major >= MIN_MAJOR) {
  // Set by the launcher below for this process only: commands this one starts re-check for themselves.
  delete process.env.EDGECTL_REEXEC;
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
} else {
  await reexec();
}

/** The bundled Node binary (node_modules/node/bin/node, from the `node` package), if installed. */
function bundledNode() {
  try {
    const pkg = createRequire(import.meta.url).resolve('node/package.json');
    const bin = join(dirname(pkg), 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

async function reexec() {
  const node = bundledNode();
  // EDGECTL_REEXEC guards against a loop should the bundled binary itself be old.
  if (!node || process.env.EDGECTL_REEXEC) {
    process.stderr.write(
      `edgectl needs Node ${MIN_MAJOR} or newer; this is Node ${process.versions.node}` +
        (node ? ` (and so is ${node})` : ' and the bundled Node (npm package "node") is not installed') +
        `.\nReinstall edgectl (npm install -g edgectl-<version>.tgz installs Node ${MIN_MAJOR} with it) or run it with Node ${MIN_MAJOR}.\n`,
    );
    process.exit(1);
  }
  const script = fileURLToPath(import.meta.url);
  const child = spawn(node, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, EDGECTL_REEXEC: '1' },
  });
  // The child does the work; this process only relays signals and the exit status. Ctrl-C at a
  // terminal reaches the child directly (same foreground process group), so SIGINT is relayed only
  // when there is no terminal: a second SIGINT would cut a command's graceful shutdown short.
  const relay = (sig) => {
    if (sig === 'SIGINT' && process.stdin.isTTY) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  // Not SIGUSR1: Node reserves it for the inspector.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];
  for (const sig of signals) process.on(sig, relay);
  child.on('error', (err) => {
    process.stderr.write(`edgectl: cannot start ${node}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const sig of signals) process.off(sig, relay);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
