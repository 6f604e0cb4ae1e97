/**
 * The feedback spool on both store backends: reports are spooled then uploaded create-only, an
 * offline registry keeps them spooled with growing backoff until it recovers, a restart resumes
 * from the spool without reusing a seq, a retried upload of bytes already in the registry is a
 * no-op, a clashing report is renumbered rather than lost, and readFeedback verifies what it reads.
 * In every case the uploaded counters sum exactly to the recorded requests.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { feedbackKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { FeedbackAccumulator } from '../../src/feedback/accumulator.js';
import { readFeedback } from '../../src/feedback/read.js';
import { sumWindows, signReport, totalRequests, type DeclaredSiteKeys } from '../../src/feedback/report.js';
import { FeedbackReporter } from '../../src/feedback/reporter.js';
import { COUNTER_FILE, FeedbackSpool, spoolFileName, type SpoolEvent } from '../../src/feedback/spool.js';
import { forEachBackend } from '../helpers/stores.js';
import { FlakyStore, addExpected, context, emptyExpected, outcomes, type Expected } from './fixtures.js';

const SITE = 'site-a';
const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgectl-spool-'));
  dirs.push(d);
  return d;
}
/** A directory registry for the tests that are not about the backend. */
function fsStore(): FsStore {
  return new FsStore(join(tempDir(), 'registry'));
}
const pub = (k: KeyPair) => ({ keyid: k.keyid, key: Buffer.from(k.publicKey).toString('base64') });

interface World {
  dir: string;
  key: KeyPair;
  declared: DeclaredSiteKeys;
  events: SpoolEvent[];
  clock: { t: number };
  open(store: Store): Promise<FeedbackSpool>;
}

function world(): World {
  const dir = join(tempDir(), 'feedback-spool');
  const key = generateKeyPair();
  const events: SpoolEvent[] = [];
  const clock = { t: T0 };
  return {
    dir,
    key,
    declared: { [SITE]: pub(key) },
    events,
    clock,
    open: (store) =>
      FeedbackSpool.open({
        dir,
        site: SITE,
        key,
        store,
        now: () => clock.t,
        random: () => 1,
        backoff: { initialMs: 1000, maxMs: 8000 },
        onEvent: (e) => events.push(e),
      }),
  };
}

/** Records `n` seeded outcomes as one window and spools it; returns what it should add up to. */
async function spoolWindow(spool: FeedbackSpool, seed: number, n: number, fleetSeq = 1): Promise<Expected> {
  const acc = new FeedbackAccumulator(context(fleetSeq), T0 + seed * 60_000);
  const { list, expected } = outcomes(seed, n);
  for (const o of list) acc.record(o);
  for (const w of acc.closeWindow(T0 + seed * 60_000 + 60_000)) await spool.enqueue(w);
  return expected;
}

async function expectRegistryMatches(
  store: Store,
  w: World,
  expected: Expected,
  seqs: number[],
): Promise<void> {
  const read = await readFeedback(store, SITE, w.declared);
  expect(read.rejected).toEqual([]);
  expect(read.reports.map((r) => r.seq)).toEqual(seqs);
  const sum = sumWindows(read.reports);
  expect(totalRequests(sum.counters)).toBe(expected.requests);
  expect(sum.counters.requests).toEqual({
    edge: expected.edge,
    speculative: expected.speculative,
    cloud: expected.cloud,
  });
  expect(sum.counters.policyBlocks).toBe(expected.blocked);
  expect(sum.counters.draftTokens).toBe(expected.draftTokens);
  expect(sum.counters.acceptedTokens).toBe(expected.acceptedTokens);
  expect(sum.counters.errors).toBe(expected.errors);
  expect(sum.latency.ttftMs.count).toBe(expected.ttftSamples);
}

forEachBackend((mk) => {
  it('spools closed windows, uploads them create-only and empties the spool', async () => {
    const store = await mk();
    const w = world();
    const spool = await w.open(store);
    let expected = emptyExpected();
    for (let i = 1; i <= 3; i++) expected = addExpected(expected, await spoolWindow(spool, i, 120));
    expect(await spool.pending()).toEqual([1, 2, 3]);
    expect(readFileSync(join(w.dir, COUNTER_FILE), 'utf8')).toContain('"next":4');
    const res = await spool.upload();
    expect(res).toEqual({ uploaded: [1, 2, 3], pending: [] });
    expect(
      w.events.filter((e) => e.kind === 'uploaded').map((e) => e.kind === 'uploaded' && e.status),
    ).toEqual(['created', 'created', 'created']);
    await expectRegistryMatches(store, w, expected, [1, 2, 3]);
  });

  it('counts a report as uploaded when only its index marker is refused (credentials scoped to feedback/)', async () => {
    const inner = await mk();
    const store = new FlakyStore(inner);
    store.deniedPrefixes = ['feedback-index/'];
    const w = world();
    const spool = await w.open(store);
    const expected = await spoolWindow(spool, 1, 50);
    expect(await spool.upload()).toEqual({ uploaded: [1], pending: [] });
    const up = w.events.find((e) => e.kind === 'uploaded');
    expect(up?.kind === 'uploaded' && up.indexRefused).toMatch(/denied/);
    expect(await inner.list('feedback-index/')).toEqual([]);
    await expectRegistryMatches(inner, w, expected, [1]);
  });

  it('keeps reports while the registry is offline, backs off, and uploads each once when it returns', async () => {
    const flaky = new FlakyStore(await mk());
    const w = world();
    const spool = await w.open(flaky);
    flaky.offline = true;
    let expected = await spoolWindow(spool, 1, 80);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      const res = await spool.upload();
      expect(res.uploaded).toEqual([]);
      expect(res.error).toContain('ECONNREFUSED');
      delays.push(res.nextAttemptAt! - w.clock.t);
      expected = addExpected(expected, await spoolWindow(spool, 1 + attempt, 30));
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(await spool.pending()).toEqual([1, 2, 3, 4, 5, 6]);
    flaky.offline = false;
    const res = await spool.upload();
    expect(res).toEqual({ uploaded: [1, 2, 3, 4, 5, 6], pending: [] });
    expect(spool.nextAttemptAt).toBeUndefined();
    await expectRegistryMatches(flaky, w, expected, [1, 2, 3, 4, 5, 6]);
  });

  it('resumes from the spool after a restart and never reuses a seq', async () => {
    const store = await mk();
    const w = world();
    const first = await w.open(store);
    let expected = await spoolWindow(first, 1, 50);
    expected = addExpected(expected, await spoolWindow(first, 2, 50));
    // "Restart": a new spool object on the same directory, nothing uploaded yet.
    const second = await w.open(store);
    expect(second.nextSeq).toBe(3);
    expected = addExpected(expected, await spoolWindow(second, 3, 50));
    expect((await second.upload()).uploaded).toEqual([1, 2, 3]);
    const third = await w.open(store);
    expect(third.nextSeq).toBe(4);
    await expectRegistryMatches(store, w, expected, [1, 2, 3]);
  });

  it('treats a retried upload of bytes already in the registry as done', async () => {
    const store = await mk();
    const w = world();
    const spool = await w.open(store);
    const expected = await spoolWindow(spool, 1, 40);
    // As if the process died after the upload but before deleting the spool file.
    await store.putIfAbsent(feedbackKey(SITE, 1), readFileSync(join(w.dir, spoolFileName(1))));
    expect(await spool.upload()).toEqual({ uploaded: [1], pending: [] });
    expect(w.events.find((e) => e.kind === 'uploaded')).toMatchObject({ status: 'exists' });
    await expectRegistryMatches(store, w, expected, [1]);
  });

  it('renumbers a report whose seq the registry already holds with other content', async () => {
    const store = await mk();
    const w = world();
    // A previous incarnation of this site (wiped data directory) uploaded seq 1 and 2.
    const old = world();
    const oldSpool = await FeedbackSpool.open({ dir: old.dir, site: SITE, key: w.key, store });
    let expected = await spoolWindow(oldSpool, 7, 30);
    expected = addExpected(expected, await spoolWindow(oldSpool, 8, 30));
    await oldSpool.upload();
    const spool = await w.open(store);
    expect(spool.nextSeq).toBe(1);
    expected = addExpected(expected, await spoolWindow(spool, 1, 60));
    const res = await spool.upload();
    expect(res).toEqual({ uploaded: [3], pending: [] });
    expect(w.events.find((e) => e.kind === 'renumbered')).toMatchObject({ from: 1, to: 3 });
    expect(spool.nextSeq).toBe(4);
    await expectRegistryMatches(store, w, expected, [1, 2, 3]);
  });

  it('readFeedback ignores reports not signed by the declared key and filters by seq and time', async () => {
    const store = await mk();
    const w = world();
    const spool = await w.open(store);
    for (let i = 1; i <= 3; i++) await spoolWindow(spool, i, 10);
    await spool.upload();
    // A forged report under seq 4, signed by a key the fleet never declared.
    const stranger = generateKeyPair();
    const forged = (await readFeedback(store, SITE, w.declared)).reports[0]!;
    await store.putIfAbsent(
      feedbackKey(SITE, 4),
      encodeEnvelope(signReport({ ...forged, seq: 4 }, stranger)),
    );
    // A genuine report stored under the wrong seq.
    const genuine = await store.get(feedbackKey(SITE, 1));
    await store.putIfAbsent(feedbackKey(SITE, 5), genuine!.body);
    const all = await readFeedback(store, SITE, w.declared);
    expect(all.reports.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(all.rejected.map((r) => r.key)).toEqual([feedbackKey(SITE, 4), feedbackKey(SITE, 5)]);
    expect(all.rejected[0]!.reason).toContain('signed by unknown key');
    expect(all.rejected[1]!.reason).toContain('seq 1, not 5');
    expect(all.lastSeq).toBe(5);
    expect((await readFeedback(store, SITE, w.declared, { afterSeq: 2 })).reports.map((r) => r.seq)).toEqual([
      3,
    ]);
    const since = new Date(T0 + 2 * 60_000 + 60_000);
    expect((await readFeedback(store, SITE, w.declared, { since })).reports.map((r) => r.seq)).toEqual([
      2, 3,
    ]);
    expect((await readFeedback(store, 'site-b', w.declared)).reports).toEqual([]);
  });
});

describe('spool recovery (local directory)', () => {
  it('recomputes a lost or corrupt counter past the spool files and removes stale temp files', async () => {
    const store = new FlakyStore(fsStore());
    store.offline = true;
    const w = world();
    const spool = await w.open(store);
    await spoolWindow(spool, 1, 5);
    await spoolWindow(spool, 2, 5);
    writeFileSync(join(w.dir, COUNTER_FILE), '{"site":"site-a","ne');
    writeFileSync(join(w.dir, `.${spoolFileName(3)}.123-abcd.tmp`), 'half a report');
    const again = await w.open(store);
    expect(again.nextSeq).toBe(3);
    expect(w.events.find((e) => e.kind === 'counter-recovered')).toMatchObject({ next: 3 });
    expect(readdirSync(w.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    rmSync(join(w.dir, COUNTER_FILE));
    expect((await w.open(store)).nextSeq).toBe(3);
  });

  it('refuses a spool directory that belongs to another site', async () => {
    const w = world();
    await w.open(fsStore());
    const err = await FeedbackSpool.open({ dir: w.dir, site: 'site-b', key: w.key, store: fsStore() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('belongs to site "site-a", not "site-b"');
  });

  it('sets a damaged spool file aside instead of uploading it or blocking the queue', async () => {
    const w = world();
    const spool = await w.open(fsStore());
    await spoolWindow(spool, 1, 5);
    await spoolWindow(spool, 2, 5);
    const file = join(w.dir, spoolFileName(1));
    writeFileSync(file, readFileSync(file, 'utf8').replace(/"payload": "./, '"payload": "A'));
    expect(await spool.upload()).toEqual({ uploaded: [2], pending: [] });
    expect(w.events.find((e) => e.kind === 'rejected-file')).toBeDefined();
    expect(readdirSync(join(w.dir, 'rejected'))).toHaveLength(1);
  });
});

describe('FeedbackReporter', () => {
  it('flushes the open window on graceful shutdown and uploads it', async () => {
    const store = fsStore();
    const w = world();
    const spool = await w.open(store);
    const reporter = new FeedbackReporter({
      spool,
      context: context(1),
      now: () => w.clock.t,
      windowMs: 60_000,
    });
    const { list, expected } = outcomes(5, 70);
    for (const o of list.slice(0, 30)) reporter.record(o);
    reporter.setContext(context(2, '2.0.0'));
    for (const o of list.slice(30)) reporter.record(o);
    w.clock.t += 30_000;
    const res = await reporter.shutdown();
    expect(res.spooled).toEqual([1, 2]);
    expect(res.upload).toEqual({ uploaded: [1, 2], pending: [] });
    await expectRegistryMatches(store, w, expected, [1, 2]);
  });

  it('keeps the flushed window spooled when the registry is down at shutdown', async () => {
    const flaky = new FlakyStore(fsStore());
    flaky.offline = true;
    const w = world();
    const reporter = new FeedbackReporter({
      spool: await w.open(flaky),
      context: context(1),
      now: () => w.clock.t,
    });
    const { list, expected } = outcomes(9, 25);
    for (const o of list) reporter.record(o);
    const res = await reporter.shutdown();
    expect(res.upload.pending).toEqual([1]);
    flaky.offline = false;
    const next = await w.open(flaky);
    expect((await next.upload()).uploaded).toEqual([1]);
    await expectRegistryMatches(flaky, w, expected, [1]);
  });

  it('closes windows and uploads on its timers', async () => {
    const store = fsStore();
    const w = world();
    let uploaded!: () => void;
    const done = new Promise<void>((r) => (uploaded = r));
    const spool = await FeedbackSpool.open({
      dir: w.dir,
      site: SITE,
      key: w.key,
      store,
      onEvent: (e) => e.kind === 'uploaded' && uploaded(),
    });
    const reporter = new FeedbackReporter({ spool, context: context(1), windowMs: 20 });
    reporter.record({ route: 'edge', e2eMs: 12 });
    reporter.start();
    await done;
    const res = await reporter.shutdown();
    expect(res.upload.pending).toEqual([]);
    const read = await readFeedback(store, SITE, w.declared);
    expect(sumWindows(read.reports).counters.requests.edge).toBe(1);
  });
});
