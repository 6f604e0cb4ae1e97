/**
 * The linters `edgectl lint` runs. Add artifact-directory and policy linters here: each claims its
 * paths (see lint.ts), so adding one changes nothing else.
 */
import { sitesLinter } from '../fleet/lint-sites.js';
import type { Linter } from './lint.js';

export function defaultLinters(): Linter[] {
  return [sitesLinter];
}
