/**
 * What every doctor check reports (`DoctorCheck`: status, what it found, the fix) and how a
 * caught error becomes a check's detail and fix. Shared by doctor.ts and the check modules beside
 * it; the checks are listed under `edgectl doctor` in docs/cli.md.
 */
import { isEdgectlError } from '../foundation/errors.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** Stable id, e.g. `node`, `keys.fleet`, `site.store-001`. */
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function suggestionOf(err: unknown): string | undefined {
  return isEdgectlError(err) ? err.suggestion : undefined;
}
