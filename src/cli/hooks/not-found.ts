/**
 * Did-you-mean off a terminal. @oclif/plugin-not-found asks "Did you mean ...?" only when stdin is
 * a TTY and otherwise prints no suggestion at all; it still owns the unknown-command exit (127, as
 * shells use), so this only adds the suggestion line and never prompts or waits. It runs as an
 * `init` hook, not a second `command_not_found` hook: oclif runs the hooks of one event
 * concurrently and the plugin's error ends the process, which would race this line away. Being
 * the init hook, it also applies NO_COLOR to ink's chalk first (color.ts).
 */
import type { Hook } from '@oclif/core';
import { applyColorEnv } from '../color.js';

/** Edit distance between two strings (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The closest command or topic id to what was typed (ids use `:` between words). */
export function closestCommand(typed: string, ids: readonly string[]): string | undefined {
  let best: { id: string; d: number } | undefined;
  for (const id of ids) {
    // A typo of the first word should suggest the topic ("sit" -> "site"), not one of its commands.
    const candidate = typed.includes(':') ? id : (id.split(':')[0] ?? id);
    const d = editDistance(typed, candidate);
    if (!best || d < best.d || (d === best.d && candidate.length < best.id.length))
      best = { id: candidate, d };
  }
  return best && best.d <= Math.max(2, Math.ceil(typed.length / 2)) ? best.id : undefined;
}

const hook: Hook<'init'> = async function (opts) {
  // Before any command loads an ink view (chalk reads the colour level once, at import).
  applyColorEnv();
  const id = opts.id;
  if (!id || id.startsWith('-') || process.stdin.isTTY) return; // at a terminal, plugin-not-found asks
  if (opts.config.findCommand(id) || opts.config.findTopic(id)) return;
  const visible = opts.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases]);
  const suggestion = closestCommand(id, visible);
  if (!suggestion) return;
  const sep = opts.config.topicSeparator ?? ':';
  process.stderr.write(`Did you mean \`${opts.config.bin} ${suggestion.replaceAll(':', sep)}\`?\n`);
};

export default hook;
