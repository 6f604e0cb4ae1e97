/**
 * The linters `edgectl lint` runs: site declarations, artifact directories (which covers
 * policies: a policy is an artifact), and rollout specs (rollouts/*.yaml). Each claims its paths
 * (see lint.ts), so adding one changes nothing else.
 */
import { artifactsLinter } from '../artifact/lint-artifacts.js';
import { sitesLinter } from '../fleet/lint-sites.js';
import { rolloutsLinter } from '../rollout/lint.js';
import type { Linter } from './lint.js';

export function defaultLinters(): Linter[] {
  return [sitesLinter, artifactsLinter, rolloutsLinter];
}
