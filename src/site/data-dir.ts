/**
 * The layout of a site's local data directory (docs/running-sites.md), defined once:
 *
 *   site.key, site.key.pub        the site's Ed25519 key (written by `site add`)
 *   trust-root.json               pinned trust root (DSSE); copied from the project at first sync,
 *                                 afterwards only advanced by walking the registry's root chain
 *   state.json                    the committed sync state (state-file.ts)
 *   fleet-states/<hex>.json       the verified fleet state state.json names, by state digest
 *   last-sync.json                what the last sync attempt did (kept apart so that a refused
 *                                 sync leaves state.json byte-for-byte as it was)
 *   sync.lock                     held by the one process syncing or rolling back
 *   chunks/sha256/..              content-addressed chunk cache (src/artifact/chunk-cache.ts)
 *   manifests/<hex>.json          verified manifest envelopes, named by manifest digest
 *   generations/<id>/             materialized artifacts of one assignment set (generation.ts)
 *   generations/.staging-*        a generation being built (never pointed at)
 *   current, previous             symbolic links to generations/<id>, switched atomically
 *   feedback-spool/               signed feedback reports waiting for upload (site daemon)
 *   run/site.{pid,json,log}       the site daemon's pid, state and log files (`site up`)
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SITE_KEY_FILE, defaultSiteDataDir } from '../fleet/site-add.js';
import { publicKeyFile } from '../registry/keys.js';

export { defaultSiteDataDir };

export interface SiteDataPaths {
  root: string;
  siteKey: string;
  sitePublicKey: string;
  trustRoot: string;
  state: string;
  fleetStates: string;
  lastSync: string;
  lock: string;
  chunks: string;
  manifests: string;
  generations: string;
  current: string;
  previous: string;
  feedbackSpool: string;
  run: string;
}

export function siteDataPaths(root: string): SiteDataPaths {
  const siteKey = join(root, SITE_KEY_FILE);
  return {
    root,
    siteKey,
    sitePublicKey: publicKeyFile(siteKey),
    trustRoot: join(root, 'trust-root.json'),
    state: join(root, 'state.json'),
    fleetStates: join(root, 'fleet-states'),
    lastSync: join(root, 'last-sync.json'),
    lock: join(root, 'sync.lock'),
    chunks: join(root, 'chunks'),
    manifests: join(root, 'manifests'),
    generations: join(root, 'generations'),
    current: join(root, 'current'),
    previous: join(root, 'previous'),
    feedbackSpool: join(root, 'feedback-spool'),
    run: join(root, 'run'),
  };
}

/** Creates the directories a sync writes into. */
export async function ensureDataDirs(p: SiteDataPaths): Promise<void> {
  for (const dir of [p.root, p.chunks, p.manifests, p.generations]) await mkdir(dir, { recursive: true });
}
