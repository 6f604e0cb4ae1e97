/**
 * NO_COLOR (https://no-color.org) and FORCE_COLOR for every part of the CLI. oclif's help (ansis)
 * and listr2 (colorette) honour both already; ink's chalk honours only FORCE_COLOR, so a set
 * NO_COLOR is translated to FORCE_COLOR=0 before any view loads chalk (the init hook calls this
 * first thing). As in Node itself, a FORCE_COLOR that is set wins over NO_COLOR.
 */
export function applyColorEnv(env: NodeJS.ProcessEnv = process.env): void {
  if (env.FORCE_COLOR !== undefined) return;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') env.FORCE_COLOR = '0';
}

/** Whether output may be coloured: FORCE_COLOR (not 0/false), else no NO_COLOR and a TTY. */
export function colorEnabled(
  env: NodeJS.ProcessEnv = process.env,
  isTTY = Boolean(process.stdout.isTTY),
): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY;
}
