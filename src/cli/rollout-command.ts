/**
 * What the `rollout` commands that act on one rollout share: the optional rollout id argument, the
 * flags of a fleet writer (registry, trust root, fleet key), the `--reason` flag, and the writer
 * target they resolve to. Kept here (the CLI layer) so each command file is only its help text and
 * the one call into `src/rollout/service.ts`.
 */
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import type { ProjectConfig } from '../config/project.js';
import type { WriterTarget } from '../rollout/service.js';
import { keyFlag, registryFlag, singleWriterFlag, trustFlag } from './flags.js';
import type { Io } from './output.js';

export const rolloutIdArgs = {
  id: Args.string({ required: false, description: 'Rollout id (default: the single active rollout).' }),
};

export const rolloutWriterFlags = {
  registry: registryFlag,
  trust: trustFlag,
  key: keyFlag,
  'single-writer': singleWriterFlag,
};

export const reasonFlag = Flags.string({ summary: 'Why (recorded in the fleet log).', helpValue: '<text>' });

/** The writer target of a rollout command: the project's registry and trust root, `--key` or the fleet key. */
export function rolloutWriterTarget(
  cfg: ProjectConfig,
  opts: { key: string | undefined; id: string | undefined; io: Io; singleWriter?: boolean },
): WriterTarget & { id?: string } {
  return {
    registryUrl: cfg.registry,
    trustPath: cfg.trustPath,
    keyPath: opts.key ? resolve(opts.key) : cfg.keys.fleet,
    singleWriter: (opts.singleWriter ?? false) || cfg.singleWriter,
    io: opts.io,
    ...(opts.id ? { id: opts.id } : {}),
  };
}
