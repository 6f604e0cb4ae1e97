/**
 * The README's commands as written: the first two commands are the ones the issue promises
 * (`npm install && npx edgectl quickstart`, then `npm test`), and every `edgectl` command line in
 * its shell blocks names a real command with flags that command declares (checked against the
 * oclif manifest the build writes), so a renamed command or flag cannot leave the README stale.
 * The quickstart itself runs end to end in test/quickstart; a fresh `edgectl init` repository is
 * taken through the README's "Start a fleet repository" block here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from './helpers/cli.js';

interface ManifestFlag {
  name: string;
  char?: string;
  aliases?: string[];
}
interface Manifest {
  commands: Record<string, { flags: Record<string, ManifestFlag> }>;
}

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const shBlocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

/** Logical command lines: continuations joined, lines inside an open quote joined, comments cut. */
function commandLines(block: string): string[] {
  const out: string[] = [];
  let pending = '';
  for (const raw of block.split('\n')) {
    const line = pending ? `${pending}\n${raw}` : raw;
    const quotes = (line.match(/"/g) ?? []).length;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1);
      continue;
    }
    if (quotes % 2 === 1) {
      pending = line;
      continue;
    }
    pending = '';
    out.push(line.replace(/(^|\s)#.*$/, '').trim());
  }
  return out.filter((l) => l !== '');
}

/** The arguments after `edgectl` in each edgectl invocation of a line (split at && ; | do). */
function invocations(line: string): string[][] {
  const unquoted = line.replace(/"[^"]*"/g, 'STR').replace(/'[^']*'/g, 'STR');
  return unquoted
    .split(/&&|;|\|/)
    .map((seg) => seg.trim().split(/\s+/))
    .map((tokens) => {
      const at = tokens.indexOf('edgectl');
      return at < 0 || (at > 0 && !['npx', 'do', 'then'].includes(tokens[at - 1] ?? ''))
        ? []
        : tokens.slice(at + 1);
    })
    .filter((t) => t.length > 0 || line.includes('edgectl'));
}

describe('README', () => {
  it('starts with `npm install && npx edgectl quickstart`, then `npm test`', () => {
    const first = commandLines(shBlocks[0] ?? '');
    expect(first).toEqual(['npm install && npx edgectl quickstart']);
    const second = commandLines(shBlocks[1] ?? '');
    expect(second).toEqual(['npm test']);
  });

  it('names only real commands and flags', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest;
    const ids = new Set([...Object.keys(manifest.commands), 'help', 'autocomplete']);
    const problems: string[] = [];
    let checked = 0;
    for (const block of shBlocks) {
      for (const line of commandLines(block)) {
        for (const args of invocations(line)) {
          const words: string[] = [];
          for (const a of args) {
            if (a.startsWith('-') || a === 'STR') break;
            words.push(a);
          }
          // The longest run of words that is a command (the rest are arguments).
          let id = '';
          for (let n = words.length; n > 0 && !id; n--) {
            const candidate = words.slice(0, n).join(':');
            if (ids.has(candidate)) id = candidate;
          }
          const flagsGiven = args
            .filter((a) => a.startsWith('--'))
            .map((a) => a.slice(2).split('=')[0] ?? '');
          if (!id) {
            if (words.length === 0 && flagsGiven.every((f) => f === 'help' || f === 'version')) continue;
            // `edgectl <topic> --help` is fine.
            if (flagsGiven.includes('help') && [...ids].some((x) => x.startsWith(`${words.join(':')}:`)))
              continue;
            problems.push(`${line}: no command "${words.join(' ')}"`);
            continue;
          }
          checked++;
          const declared = manifest.commands[id]?.flags ?? {};
          const names = new Set([
            'help',
            ...Object.values(declared).flatMap((f) => [f.name, ...(f.aliases ?? [])]),
          ]);
          for (const f of flagsGiven) {
            if (!names.has(f) && ids.has(id) && manifest.commands[id])
              problems.push(`${line}: ${id} has no --${f}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(30);
  });

  it('"Start a fleet repository" works as written', async () => {
    const home = mkdtempSync(join(tmpdir(), 'edgectl-readme-'));
    try {
      const block = shBlocks.find((b) => b.includes('init ~/my-fleet')) ?? '';
      const lines = commandLines(block).filter((l) => !l.startsWith('alias '));
      expect(lines[0]).toBe('edgectl init ~/my-fleet && cd ~/my-fleet');
      const fleet = join(home, 'my-fleet');
      expect((await runCli(['init', fleet], { cwd: home })).code).toBe(0);
      for (const line of lines.slice(1)) {
        for (const args of invocations(line)) {
          const r = await runCli(args, { cwd: fleet, env: { HOME: home } });
          expect(r.code, `${line}\n${r.stdout}${r.stderr}`).toBe(0);
        }
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    // The block publishes the example's artifacts, plans and applies: a dozen commands.
  }, 300_000);
});
