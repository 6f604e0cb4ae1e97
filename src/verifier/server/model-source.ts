/**
 * Turns the `--model` / `--adapter` argument of `verifier up`, `generate` and `bench` into a local
 * directory: an existing directory is used as is; `<kind>/<name>@<version|digest>` is a published
 * artifact ref, pulled (verified under the trust root, through the chunk cache, only what changed)
 * into `.edgectl/artifacts/<kind>/<name>/<version>` under the project root (`projectArtifactDir`).
 * A value that is neither gets an error saying which of the two forms was expected. Every caller
 * wants a language model, so an embedder (role `embedder` in the directory's artifact.yaml or the
 * published manifest) is refused here, by name, rather than by the LM config loader's field errors.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../../foundation/errors.js';
import type { Io } from '../../foundation/output.js';
import { defaultCacheDir } from '../../artifact/chunk-cache.js';
import { resolveRef } from '../../artifact/manifest-store.js';
import { modelRole } from '../../artifact/model-role.js';
import { projectArtifactDir, pullArtifact } from '../../artifact/pull.js';
import { readArtifactYaml } from '../../config/artifact-yaml.js';
import { parseRef, type ArtifactKind } from '../../artifact/ref.js';
import type { ProjectConfig } from '../../config/project.js';
import { openStore } from '../../registry/open-store.js';
import { loadRegistryTrust } from '../../registry/trust.js';

export interface ModelSource {
  dir: string;
  /** The artifact ref it was pulled from, when given as a ref. */
  ref: string | undefined;
}

export async function resolveModelSource(
  input: string,
  cfg: ProjectConfig,
  io: Io,
  kind: ArtifactKind = 'model',
  flag = '--model',
): Promise<ModelSource> {
  const abs = resolve(input);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) {
      throw new UserError(`${flag} ${input} is a file; give the ${kind} directory`, {
        code: 'E_MODEL',
        suggestion: `Point ${flag} at the directory holding the ${kind}'s files.`,
      });
    }
    if (kind === 'model') refuseEmbedder(flag, input, declaredRole(abs));
    return { dir: abs, ref: undefined };
  }
  if (!/^[a-z]+\/[^@\s]+@/.test(input)) {
    throw new UserError(`${flag} ${input}: no such directory`, {
      code: 'E_MODEL',
      suggestion: `Give a ${kind} directory or a published ref such as ${kind}/<name>@1.0.0.`,
    });
  }
  const ref = parseRef(input);
  if (ref.kind !== kind) {
    throw new UserError(`${flag} ${input}: expected a ${kind} ref, got a ${ref.kind}`, { code: 'E_REF' });
  }
  const dir = projectArtifactDir(cfg.root, ref);
  const store = await openStore(cfg.registry);
  try {
    const trust = await loadRegistryTrust(store, cfg.trustPath, new Date());
    const loaded = await resolveRef(store, ref, trust);
    if (kind === 'model') refuseEmbedder(flag, loaded.ref, modelRole(loaded.manifest));
    io.log('info', `pulling ${loaded.ref} from ${cfg.registry}`);
    const pulled = await pullArtifact({ store, ref, trust, dir, cacheDir: defaultCacheDir(), io });
    return { dir, ref: pulled.ref };
  } finally {
    await store.close();
  }
}

/** The role a model directory's artifact.yaml declares (undefined when none, or unreadable: the loaders say why). */
function declaredRole(dir: string): string | undefined {
  try {
    return readArtifactYaml(dir).value.role;
  } catch {
    return undefined;
  }
}

function refuseEmbedder(flag: string, what: string, role: string | undefined): void {
  if (role !== 'embedder') return;
  throw new UserError(`${flag} ${what} is an embedder (a sentence encoder), not a language model`, {
    code: 'E_MODEL_ROLE',
    suggestion: `Give ${flag} a draft or verifier model; an embedder is used by \`edgectl index build --embedder\`.`,
    details: { role },
  });
}
