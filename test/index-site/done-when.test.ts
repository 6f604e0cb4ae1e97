/**
 * Issue #20 "Done when", with real processes: an index built from the committed corpus is
 * published (after its embedder model), assigned to a site in `sites/<name>.yaml`, served by
 * `edgectl site up`; a question through the official `openai` client with `edgectl.retrieval` is
 * answered citing the site's own passages; `site status --json` and `/metrics` show the index's
 * age; an updated index (one document added) is published, assigned, synced and hot-swapped by the
 * running daemon, moving only the new segment, and the new document is then cited.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFleet } from '../../src/fleet/apply.js';
import { updateIndex } from '../../src/index/index.js';
import { FsStore } from '../../src/registry/fs-store.js';
import type { SiteUpResult } from '../../src/runtime/daemon/client.js';
import { isAlive } from '../../src/supervisor/process-identity.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { siteYaml, writeSite } from '../fleet/registry-fixture.js';
import { daemonWorld, REFS, type DaemonWorld } from '../runtime/daemon/world.js';
import { tempDir } from '../site/fixtures.js';
import { CORPUS, EMBEDDER, embedderModelDir, indexDir } from './fixtures.js';

interface ChatInfo {
  citations?: string[];
  retrieval?: { index: string; ref: string; passages: number; ageSeconds: number };
}

describe('RAG at a site, end to end (site up, openai client)', () => {
  let w: DaemonWorld;
  let url = '';
  let pid = 0;
  const src = tempDir('edgectl-done-');
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: w.project, timeoutMs: 90_000 });

  async function declare(index: string) {
    const yaml = siteYaml(w.site, {
      key: Buffer.from(w.siteKey.publicKey).toString('base64'),
      model: REFS.model,
      adapters: [],
      policy: REFS.policy,
      extra: `  indexes:\n    - ${index}\nruntime:\n  interval: 1s`,
    });
    writeSite(w.sitesDir, w.site, yaml);
    await applyFleet({
      store: w.store,
      trust: w.t.trust,
      signer: w.t.fleet,
      sitesDir: w.sitesDir,
      clock: () => new Date(),
    });
  }

  beforeAll(async () => {
    w = await daemonWorld(new FsStore(join(tempDir('edgectl-done-reg-'), 'registry')), {
      publishExtra: false,
    });
    await w.publish(embedderModelDir(src));
    await w.publish(await indexDir(src, { out: 'v1' }));
    await declare('index/kb@1.0.0');
  }, 180_000);
  afterAll(async () => {
    if (w) await runCli(['site', 'down', w.site, '--data-dir', w.dataDir], { cwd: w.project });
    if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
  });

  const ask = async (question: string): Promise<ChatInfo> => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: question }],
      max_tokens: 8,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route: 'edge', retrieval: { index: 'kb', k: 2 } },
    });
    expect(chat.choices[0]?.message.content).toBeTypeOf('string');
    return (chat as unknown as { edgectl: ChatInfo }).edgectl;
  };

  it('answers citing its own passages, shows freshness, and hot-swaps an updated index', async () => {
    const up = await cli('site', 'up', w.site, '--data-dir', w.dataDir, '--listen', '127.0.0.1:0', '--json');
    expect(up.code, up.stderr).toBe(0);
    const r = up.json<SiteUpResult>();
    pid = r.pid;
    url = r.url ?? '';

    const first = await ask('the receipt printer is jammed, what do I do?');
    expect(first.citations?.[0]).toMatch(/printer/);
    expect(first.retrieval).toMatchObject({ index: 'kb', ref: 'index/kb@1.0.0' });

    const st = await cli('site', 'status', w.site, '--data-dir', w.dataDir, '--json');
    expect(st.code, st.stderr).toBe(0);
    const status = st.json<{ indexes: { name: string; ref: string; ageSeconds: number }[] }>();
    expect(status.indexes).toEqual([expect.objectContaining({ name: 'kb', ref: 'index/kb@1.0.0' })]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/edgectl_index_age_seconds\{index="kb",ref="index\/kb@1\.0\.0"\} \d+/);

    // Update one document: the new version's new segment is all the site fetches.
    const corpus = join(src, 'corpus');
    cpSync(CORPUS, corpus, { recursive: true });
    writeFileSync(
      join(corpus, 'self-checkout.md'),
      '# Self checkout lane frozen\n\nWhen the self checkout lane freezes, restart it from the back panel switch and wait for the blue light.\n',
    );
    const v2 = join(src, 'v2');
    await updateIndex(join(src, 'v1'), corpus, { embedderDir: EMBEDDER, outDir: v2 });
    writeFileSync(join(v2, 'artifact.yaml'), 'kind: index\nname: kb\nversion: "1.1.0"\n');
    await w.publish(v2);
    await declare('index/kb@1.1.0');

    let info: ChatInfo | undefined;
    for (let i = 0; i < 60; i++) {
      await new Promise((res) => setTimeout(res, 500));
      info = await ask('the self checkout lane is frozen');
      if (info.retrieval?.ref === 'index/kb@1.1.0') break;
    }
    expect(info?.retrieval?.ref).toBe('index/kb@1.1.0');
    expect(info?.citations?.[0]).toMatch(/self-checkout/);
  });
});
