/**
 * An embedder (a `role: embedder` model: the sentence encoder an index pins) is never a site's
 * model. Each place a user or a site would meet one in the model slot refuses it with
 * E_SITE_MODEL_ROLE: `edgectl lint` (against the project's artifact sources), `site plan` and
 * `site apply` (exit 2, naming the site file, line and `assignments.model`), `rollout canary`
 * (exit 2, nothing written), a site syncing a fleet state an older edgectl wrote (exit 4, the
 * current generation stays), and the site runtime loading such a generation (refused, the installed
 * one keeps serving). The reverse, an index pinning a draft model as its embedder, is refused at
 * publish and at sync.
 */
import { readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactKey } from '../../src/registry/layout.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  PayloadType,
  peekPayload,
  signEnvelope,
} from '../../src/registry/envelope.js';
import { ExitCode, isEdgectlError } from '../../src/foundation/errors.js';
import { registryRefResolver } from '../../src/fleet/resolve.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { planSites } from '../../src/fleet/service.js';
import { readFleet } from '../../src/fleet/read.js';
import { sitesLinter } from '../../src/fleet/lint-sites.js';
import { runLint } from '../../src/lint/lint.js';
import { writeKeyPair } from '../../src/registry/keys.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { startCanary } from '../../src/rollout/service.js';
import { Serving } from '../../src/runtime/daemon/serving.js';
import type { DaemonFeedback } from '../../src/runtime/daemon/feedback.js';
import { daemonLog } from '../../src/runtime/daemon/log.js';
import { currentGeneration } from '../../src/site/agent.js';
import { siteDataPaths } from '../../src/site/data-dir.js';
import { LocalManifests } from '../../src/site/manifests.js';
import { siteYaml, writeSite } from '../fleet/registry-fixture.js';
import type { SiteWorld } from '../site/fixtures.js';
import { daemonWorld, REFS } from '../runtime/daemon/world.js';
import { embedderModelDir, indexDir, tempDir } from './fixtures.js';

const EMBEDDER_REF = 'model/kiosk-embedder@1.0.0';

async function caught(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

function expectRefused(err: unknown, exit: ExitCode, code = 'E_SITE_MODEL_ROLE'): string {
  expect(isEdgectlError(err) && err.code).toBe(code);
  expect(isEdgectlError(err) && err.exitCode).toBe(exit);
  return err instanceof Error ? err.message : '';
}

/** A site on the committed draft model, synced, with the fixture embedder published beside it. */
async function world(): Promise<{
  w: SiteWorld;
  refs: { model: string; adapters: string[]; policy: string };
}> {
  const w = await daemonWorld(new FsStore(join(tempDir(), 'registry')), { publishExtra: false });
  await w.publish(embedderModelDir(tempDir()));
  const refs = { model: REFS.model, adapters: [REFS.support100], policy: REFS.policy };
  await w.assign(refs);
  await w.sync();
  return { w, refs };
}

const stores: FsStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

describe('an embedder in the model slot', () => {
  it('is refused by edgectl lint when the project sources declare it an embedder', async () => {
    const root = tempDir();
    embedderModelDir(join(root, 'artifacts', 'models'));
    const sitesDir = join(root, 'sites');
    writeSite(sitesDir, 'kiosk-1', siteYaml('kiosk-1', { model: EMBEDDER_REF }));
    writeSite(sitesDir, 'kiosk-2', siteYaml('kiosk-2'));
    const ctx = { root, sitesDir, display: (p: string) => relative(root, p) };
    const report = await runLint([], [sitesLinter], ctx);
    expect(report.problems).toEqual([
      expect.objectContaining({ file: 'sites/kiosk-1.yaml', line: 6, field: 'assignments.model' }),
    ]);
    expect(report.problems[0]?.message).toMatch(
      /model\/kiosk-embedder@1\.0\.0 is an embedder .*artifacts\/models\/embedder\/artifact\.yaml says role: embedder.*assign a model with role draft/,
    );
  });

  it('is refused by site plan and site apply (exit 2, file:line, assignments.model, the fix)', async () => {
    const { w, refs } = await world();
    stores.push(w.store as FsStore);
    const before = (await readFleet(w.store, w.t.trust, { now: new Date() })).seq;
    writeSite(
      w.sitesDir,
      w.site,
      siteYaml(w.site, {
        key: Buffer.from(w.siteKey.publicKey).toString('base64'),
        ...refs,
        model: EMBEDDER_REF,
      }),
    );
    const plan = await caught(
      planSites({ registryUrl: w.store.url, trustPath: w.trustPath, sitesDir: w.sitesDir, cwd: w.dir }),
    );
    const message = expectRefused(plan, ExitCode.Usage);
    expect(message).toMatch(
      /sites\/store-001\.yaml:6: assignments\.model: model\/kiosk-embedder@1\.0\.0 is an embedder \(a sentence encoder\), not a draft model/,
    );
    expect(isEdgectlError(plan) && plan.suggestion).toMatch(
      /assign a model with role draft.*an index pins its embedder/,
    );
    const apply = await caught(
      applyFleet({
        store: w.store,
        trust: w.t.trust,
        signer: w.t.fleet,
        sitesDir: w.sitesDir,
        clock: () => new Date(),
      }),
    );
    expectRefused(apply, ExitCode.Usage);
    expect((await readFleet(w.store, w.t.trust, { now: new Date() })).seq).toBe(before);
  });

  it('is refused as a rollout canary candidate before anything is written', async () => {
    const { w } = await world();
    stores.push(w.store as FsStore);
    const keyPath = join(w.dir, 'fleet.key');
    writeKeyPair(keyPath, w.t.fleet);
    const before = (await readFleet(w.store, w.t.trust, { now: new Date() })).seq;
    const err = await caught(
      startCanary({ registryUrl: w.store.url, trustPath: w.trustPath, keyPath, candidate: EMBEDDER_REF }),
    );
    expect(expectRefused(err, ExitCode.Usage)).toMatch(
      /^rollout candidate: model\/kiosk-embedder@1\.0\.0 is an embedder/,
    );
    expect((await readFleet(w.store, w.t.trust, { now: new Date() })).seq).toBe(before);
  });

  it('written by an older edgectl, is refused at sync (exit 4); the current generation stays', async () => {
    const { w, refs } = await world();
    stores.push(w.store as FsStore);
    const first = await currentGeneration(w.dataDir);
    // An edgectl before the role check: the resolver knows digests only.
    const resolver = registryRefResolver(w.store, w.t.trust);
    writeSite(
      w.sitesDir,
      w.site,
      siteYaml(w.site, {
        key: Buffer.from(w.siteKey.publicKey).toString('base64'),
        ...refs,
        model: EMBEDDER_REF,
      }),
    );
    await applyFleet({
      store: w.store,
      trust: w.t.trust,
      signer: w.t.fleet,
      sitesDir: w.sitesDir,
      clock: () => new Date(),
      resolveRef: async (ref) => {
        const r = await resolver(ref);
        return r && { digest: r.digest };
      },
    });
    const sync = await caught(w.sync());
    expect(expectRefused(sync, ExitCode.Verification)).toMatch(
      /the fleet state assigns this site's model: model\/kiosk-embedder@1\.0\.0 is an embedder.*refused/,
    );
    expect(readlinkSync(join(w.dataDir, 'current'))).toContain(first?.id as string);
  });

  it('in a generation handed to the site runtime, is refused; the installed generation keeps serving', async () => {
    const { w } = await world();
    stores.push(w.store as FsStore);
    const first = (await currentGeneration(w.dataDir))!;
    const lines: string[] = [];
    const feedback = { setContext: () => undefined } as unknown as DaemonFeedback;
    const serving = new Serving(
      { fleetSeq: 1, refs: { adapters: [] } },
      w.dataDir,
      feedback,
      () => 1,
      daemonLog('debug', (l) => lines.push(l)),
      1,
    );
    await serving.reconcile();
    expect(serving.generations.current?.id).toBe(first.id);
    // A generation an older edgectl built: its model is the embedder, whose verified manifest the
    // data directory holds (as sync leaves every manifest it installed).
    const envelope = (await w.store.get(artifactKey('model', 'kiosk-embedder', '1.0.0')))!.body;
    const digest = (await registryRefResolver(w.store, w.t.trust)(EMBEDDER_REF))!.digest;
    await new LocalManifests(siteDataPaths(w.dataDir).manifests).put(digest, Buffer.from(envelope));
    const refs = serving.generations.current!.context.refs;
    const ok = await serving.generations.reconcile({
      id: 'e'.repeat(20),
      dir: first.dir,
      context: {
        fleetSeq: first.info.seq + 1,
        refs: { ...refs, model: { ref: EMBEDDER_REF, manifestDigest: digest } },
      },
    });
    expect(ok).toBe(false);
    expect(serving.generations.lastFailure?.error).toMatch(/model\/kiosk-embedder@1\.0\.0 is an embedder/);
    expect(serving.generations.current?.id).toBe(first.id);
    expect(lines.join('\n')).toMatch(/generation failed to load; the installed one keeps serving/);
    await serving.generations.close();
  });
});

describe('a draft model as an index embedder', () => {
  it('is refused at publish, naming the model and its role', async () => {
    const { w } = await world();
    stores.push(w.store as FsStore);
    const dir = await indexDir(tempDir());
    // Pin the draft model's manifest digest instead of the encoder's (a hand-edited index.json).
    const draft = (await registryRefResolver(w.store, w.t.trust)('model/draft@1.0.0'))!.digest;
    const json = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
      embedder: { digest: string };
    };
    json.embedder.digest = draft;
    writeFileSync(join(dir, 'index.json'), JSON.stringify(json));
    rmSync(join(dir, '.edgectl-embedder'), { force: true });
    const err = await caught(w.publish(dir));
    expect(expectRefused(err, ExitCode.Usage, 'E_INDEX_EMBEDDER')).toMatch(
      /index\.json: embedder: .* is model\/draft@1\.0\.0, a model of role draft, not an embedder/,
    );
  });

  it('is refused at sync when a (hand-signed) index manifest pins one (exit 4)', async () => {
    const { w, refs } = await world();
    stores.push(w.store as FsStore);
    await w.publish(await indexDir(tempDir()));
    // index/kb@2.0.0: kb@1.0.0's manifest with the draft model as its embedder, validly signed.
    const key = artifactKey('index', 'kb', '1.0.0');
    const manifest = peekPayload(decodeEnvelope((await w.store.get(key))!.body, key)) as {
      version: string;
      meta: Record<string, unknown>;
    };
    const draft = (await registryRefResolver(w.store, w.t.trust)(REFS.model))!.digest;
    manifest.version = '2.0.0';
    manifest.meta = { ...manifest.meta, embedder: REFS.model, embedderDigest: draft };
    const forged = signEnvelope(PayloadType.artifact, manifest, [w.t.artifacts]);
    await w.store.putIfAbsent(artifactKey('index', 'kb', '2.0.0'), encodeEnvelope(forged));
    await w.assign({ ...refs, indexes: ['index/kb@2.0.0'] });
    const err = await caught(w.sync());
    expect(expectRefused(err, ExitCode.Verification, 'E_INDEX_EMBEDDER')).toMatch(
      /index\/kb@2\.0\.0: the index pins model\/draft@1\.0\.0 as its embedder, but that is a model of role draft/,
    );
  });
});
