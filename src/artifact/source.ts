/**
 * The files of an artifact source directory: walked recursively, in a stable order, with the same
 * path rules a manifest must satisfy. Symlinks and special files are refused rather than followed
 * (a link could pull in bytes from outside the artifact, and a site must never create one), hidden
 * entries (names starting with ".") and the top-level artifact.yaml are left out.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { ARTIFACT_YAML } from '../config/artifact-yaml.js';
import { pathProblem } from './paths.js';

export interface SourceFile {
  /** Relative, "/"-separated path inside the artifact. */
  path: string;
  absPath: string;
  size: number;
  /** 0o755 when any execute bit is set, else 0o644. */
  mode: 0o755 | 0o644;
}

function refuse(dir: string, rel: string, why: string): UserError {
  return new UserError(`${join(dir, rel)}: ${why}`, {
    code: 'E_SOURCE_PATH',
    suggestion:
      'artifacts hold only regular files with relative paths inside the directory; replace links with copies',
    details: { dir, path: rel },
  });
}

function lstat(path: string): Stats {
  try {
    return lstatSync(path);
  } catch (err) {
    throw new UserError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: 'E_SOURCE_READ',
    });
  }
}

/** Lists the artifact's files sorted by path; throws UserError (exit 2) on links and bad names. */
export function listSourceFiles(dir: string): { files: SourceFile[]; skipped: string[] } {
  const top = lstat(dir);
  if (top.isSymbolicLink()) throw refuse(dir, '', 'the artifact directory is a symbolic link');
  if (!top.isDirectory()) throw new UserError(`${dir} is not a directory`, { code: 'E_SOURCE_PATH' });
  const files: SourceFile[] = [];
  const skipped: string[] = [];
  const walk = (rel: string) => {
    const entries = readdirSync(join(dir, rel)).sort();
    for (const name of entries) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (name.startsWith('.') || (rel === '' && name === ARTIFACT_YAML)) {
        skipped.push(childRel);
        continue;
      }
      const abs = join(dir, childRel);
      const st = lstat(abs);
      if (st.isSymbolicLink()) throw refuse(dir, childRel, 'is a symbolic link');
      const problem = pathProblem(childRel);
      if (problem) throw refuse(dir, childRel, `unsafe file name: ${problem}`);
      if (st.isDirectory()) walk(childRel);
      else if (st.isFile()) {
        files.push({ path: childRel, absPath: abs, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
      } else throw refuse(dir, childRel, 'is not a regular file');
    }
  };
  walk('');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, skipped };
}
