/**
 * Artifact file paths: the one rule for which paths may appear in an artifact, applied both when a
 * directory is published and when a manifest is read (a signed manifest is still untrusted input
 * for the file system it is materialized into). A path is relative, POSIX-separated, normalized
 * (no `.`, `..` or empty segments), has no backslash or NUL, and fits common file-system limits.
 */

export const MAX_PATH_LENGTH = 1024;

/** Why a path is not acceptable, or undefined when it is. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'empty path';
  if (path.length > MAX_PATH_LENGTH) return `longer than ${MAX_PATH_LENGTH} characters`;
  if (path.includes('\0')) return 'contains a NUL byte';
  if (path.includes('\\')) return 'contains a backslash (paths use "/")';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'is absolute';
  for (const segment of path.split('/')) {
    if (segment === '..') return 'escapes the artifact ("..")';
    if (segment === '.' || segment === '') return 'is not normalized (empty or "." segment)';
    if (segment.length > 255) return 'has a segment longer than 255 characters';
  }
  return undefined;
}

/**
 * Problems with a set of paths taken together: duplicates, and a path that is also a directory of
 * another (`a` and `a/b`), which no file system can hold.
 */
export function pathSetProblem(paths: readonly string[]): { path: string; problem: string } | undefined {
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) return { path: p, problem: 'appears twice' };
    seen.add(p);
  }
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) return { path: dir, problem: `is a file but also the directory of ${p}` };
    }
  }
  return undefined;
}
