/**
 * The project configuration: `edgectl.yaml`, found in the working directory or one of its parents.
 *
 * It holds defaults (registry URL, key paths, trust root path); the env var EDGECTL_REGISTRY and
 * command flags override it. Relative paths are resolved against the directory holding edgectl.yaml
 * (the project root), or the working directory when there is none.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { readYamlWithSchema } from './yaml-file.js';

export const CONFIG_FILE = 'edgectl.yaml';
export const DEFAULT_REGISTRY = 'file:.edgectl/registry';

export const configSchema = z
  .object({
    registry: z.string().min(1).optional(),
    trust: z.string().min(1).optional(),
    sites: z.string().min(1).optional(),
    /** Fleet writes on a store without conditional writes take the lease fleet/lease.json (write-guard.ts). */
    singleWriter: z.boolean().optional(),
    keys: z
      .object({
        root: z.string().min(1).optional(),
        artifacts: z.string().min(1).optional(),
        fleet: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ProjectConfigFile = z.infer<typeof configSchema>;

export interface ProjectConfig {
  /** Directory holding edgectl.yaml, or the working directory. */
  root: string;
  /** Path of edgectl.yaml if one was found. */
  file: string | undefined;
  registry: string;
  registrySource: 'flag' | 'env' | 'config' | 'default';
  trustPath: string;
  sitesDir: string;
  keys: { root?: string; artifacts?: string; fleet?: string };
  /** `singleWriter: true` in edgectl.yaml (the `--single-writer` flag of fleet writers). */
  singleWriter: boolean;
}

export function findConfigFile(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** `file:` URLs with relative paths are made absolute against the project root. */
export function resolveRegistryUrl(url: string, root: string): string {
  if (url.startsWith('file:')) {
    const p = url.slice('file:'.length);
    return `file:${isAbsolute(p) ? p : resolve(root, p)}`;
  }
  if (!url.includes(':') || url.startsWith('/') || url.startsWith('.')) {
    // A bare path is a directory registry.
    return `file:${resolve(root, url)}`;
  }
  return url;
}

export interface LoadConfigOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  registryFlag?: string | undefined;
  /** `--trust`: a trust root path relative to the working directory. */
  trustFlag?: string | undefined;
}

export function loadProjectConfig(opts: LoadConfigOptions = {}): ProjectConfig {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const file = findConfigFile(cwd);
  const root = file ? dirname(file) : cwd;
  const cfg: ProjectConfigFile = file ? readYamlWithSchema(file, configSchema).value : {};
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(root, p));

  let registry: string;
  let registrySource: ProjectConfig['registrySource'];
  if (opts.registryFlag) {
    // Flags are relative to where the user typed them.
    registry = resolveRegistryUrl(opts.registryFlag, cwd);
    registrySource = 'flag';
  } else if (env.EDGECTL_REGISTRY) {
    registry = resolveRegistryUrl(env.EDGECTL_REGISTRY, cwd);
    registrySource = 'env';
  } else if (cfg.registry) {
    registry = resolveRegistryUrl(cfg.registry, root);
    registrySource = 'config';
  } else {
    registry = resolveRegistryUrl(DEFAULT_REGISTRY, root);
    registrySource = 'default';
  }

  const keys: ProjectConfig['keys'] = {};
  if (cfg.keys?.root) keys.root = abs(cfg.keys.root);
  if (cfg.keys?.artifacts) keys.artifacts = abs(cfg.keys.artifacts);
  if (cfg.keys?.fleet) keys.fleet = abs(cfg.keys.fleet);

  return {
    root,
    file,
    registry,
    registrySource,
    trustPath: opts.trustFlag ? resolve(cwd, opts.trustFlag) : abs(cfg.trust ?? 'trust/root.json'),
    sitesDir: abs(cfg.sites ?? 'sites'),
    keys,
    singleWriter: cfg.singleWriter ?? false,
  };
}
