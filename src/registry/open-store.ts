/**
 * Opens the Store a registry URL names: `file:<absolute path>` (a directory) or
 * `s3://<bucket>/<prefix>` (every key is stored under the prefix). Relative `file:` paths are
 * resolved by the project config (src/config/project.ts) before they get here.
 */
import { isAbsolute } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { FsStore, type FsStoreOptions } from './fs-store.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  fs?: FsStoreOptions;
  s3?: S3StoreOptions;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  if (!BUCKET_RE.test(bucket)) {
    throw new UserError(`invalid S3 registry URL ${url}: "${bucket}" is not a valid bucket name`, {
      code: 'E_REGISTRY_URL',
      suggestion: 'use s3://<bucket>/<prefix>, e.g. s3://my-bucket/edgectl',
    });
  }
  if (prefix.split('/').some((s) => s === '.' || s === '..' || s.startsWith('.'))) {
    throw new UserError(`invalid S3 registry URL ${url}: the prefix may not contain dot segments`, {
      code: 'E_REGISTRY_URL',
    });
  }
  return { bucket, prefix };
}

export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  if (url.startsWith('file:')) {
    let path = url.slice('file:'.length);
    // Accept file:///abs/path as well as file:/abs/path.
    if (path.startsWith('//')) path = decodeURIComponent(new URL(url).pathname);
    if (!isAbsolute(path)) {
      throw new UserError(`registry URL ${url} must name an absolute directory`, {
        code: 'E_REGISTRY_URL',
        suggestion:
          'use file:/absolute/path (relative paths are resolved against the project root by edgectl.yaml)',
      });
    }
    return new FsStore(path, opts.fs);
  }
  if (url.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(url);
    return new S3Store(bucket, prefix, opts.s3);
  }
  throw new UserError(`unsupported registry URL ${url}`, {
    code: 'E_REGISTRY_URL',
    suggestion:
      'use file:<directory> or s3://<bucket>/<prefix> (via --registry, EDGECTL_REGISTRY or edgectl.yaml)',
  });
}
