/**
 * OpenAI's model objects (`GET /v1/models`, `GET /v1/models/{id}`), shared by the site runtime and
 * the verifier so both list models the same way (issue #18 item 4). `created` must not change
 * between calls or restarts (clients cache on it): the site passes the model artifact's publish
 * time from its signed manifest; where no manifest is at hand (a verifier on a plain directory, a
 * hand-assembled generation) it is the modification time of the model's config.json, which only
 * changes when the model files do.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { modelNotFound } from './http.js';

export interface OpenAiModel {
  id: string;
  object: 'model';
  /** Unix seconds; see the module comment. */
  created: number;
  owned_by: string;
}

/** Unix seconds of an ISO timestamp (a manifest's `created`), or undefined when it is not one. */
export function isoToUnixSeconds(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** The stable `created` of a model directory without a manifest: its config.json's mtime. */
export function modelDirCreated(dir: string): number {
  try {
    return Math.floor(statSync(join(dir, 'config.json')).mtimeMs / 1000);
  } catch {
    return 0; // a model without config.json does not load; 0 is OpenAI's "unknown"
  }
}

/** `{object: "list", data}` for GET /v1/models. */
export function modelList(ids: readonly string[], created: number, ownedBy: string) {
  return {
    object: 'list' as const,
    data: ids.map((id): OpenAiModel => ({ id, object: 'model', created, owned_by: ownedBy })),
  };
}

/** The model object for GET /v1/models/{id}, or a 404 `model_not_found` naming what exists. */
export function modelObject(
  id: string,
  ids: readonly string[],
  created: number,
  ownedBy: string,
): OpenAiModel {
  if (!ids.includes(id)) {
    throw modelNotFound(
      `The model "${id}" does not exist here; available: ${ids.join(', ')} (GET /v1/models)`,
    );
  }
  return { id, object: 'model', created, owned_by: ownedBy };
}
