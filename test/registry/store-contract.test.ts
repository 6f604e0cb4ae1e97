import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, UserError } from '../../src/foundation/errors.js';
import { sha256Hex } from '../../src/foundation/digest.js';
import { forAllBackends } from '../helpers/stores.js';

describe('Store contract', () => {
  forAllBackends((mk) => {
    it('get and head of a missing key are undefined; list of an empty store is empty', async () => {
      const store = await mk();
      expect(await store.get('a/missing.json')).toBeUndefined();
      expect(await store.head('a/missing.json')).toBeUndefined();
      expect(await store.list('')).toEqual([]);
      await expect(store.getRange('a/missing.json', 0, 1)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('putIfAbsent creates, and get/head/list see the same size and etag', async () => {
      const store = await mk();
      const body = Buffer.from('{"hello":"world"}\n');
      const put = await store.putIfAbsent('artifacts/model/m/1.0.0.json', body);
      expect(put.status).toBe('created');
      const got = await store.get('artifacts/model/m/1.0.0.json');
      expect(got?.body.equals(body)).toBe(true);
      expect(got?.size).toBe(body.length);
      expect(got?.etag).toBe(put.etag);
      const head = await store.head('artifacts/model/m/1.0.0.json');
      expect(head).toMatchObject({ key: 'artifacts/model/m/1.0.0.json', size: body.length, etag: put.etag });
      // Modification times (gc's grace period) come from the backend's clock: allow some skew.
      expect(Math.abs((head?.modified?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
      const listed = await store.list('artifacts/');
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ key: head?.key, size: head?.size, etag: head?.etag });
      expect(listed[0]?.modified).toBeInstanceOf(Date);
    });

    it('putIfAbsent with the same bytes is `exists`; with different bytes a ConflictError, and nothing changes', async () => {
      const store = await mk();
      const body = Buffer.from('one');
      expect((await store.putIfAbsent('fleet/log/000000000001.json', body)).status).toBe('created');
      const again = await store.putIfAbsent('fleet/log/000000000001.json', Buffer.from('one'));
      expect(again.status).toBe('exists');
      const err = await store
        .putIfAbsent('fleet/log/000000000001.json', Buffer.from('two'))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as Error).message).toMatch(
        /fleet\/log\/000000000001\.json already exists with different content/,
      );
      expect((await store.get('fleet/log/000000000001.json'))?.body.toString()).toBe('one');
    });

    it('a content-addressed blob already present is `exists` without re-reading it', async () => {
      const store = await mk();
      const body = randomBytes(4096);
      const key = `blobs/sha256/${sha256Hex(body)}`;
      expect((await store.putIfAbsent(key, body)).status).toBe('created');
      store.resetStats();
      expect((await store.putIfAbsent(key, Buffer.from(body))).status).toBe('exists');
      if (mk.backend !== 'fs') expect(store.stats).toMatchObject({ requests: 1, heads: 1, gets: 0, puts: 0 });
    });

    it('list is sorted, filtered by prefix (including partial segments) and strips the backend prefix', async () => {
      const store = await mk();
      const keys = [
        'fleet/log/000000000002.json',
        'fleet/log/000000000010.json',
        'fleet/head.json',
        'fleet/log/000000000001.json',
        'feedback/s1/000000000001.json',
      ];
      for (const k of keys) await store.putIfAbsent(k, Buffer.from(k));
      expect((await store.list('fleet/log/')).map((o) => o.key)).toEqual([
        'fleet/log/000000000001.json',
        'fleet/log/000000000002.json',
        'fleet/log/000000000010.json',
      ]);
      expect((await store.list('fleet/log/00000000000')).map((o) => o.key)).toHaveLength(2);
      expect((await store.list('f')).map((o) => o.key)).toEqual([...keys].sort());
      expect((await store.list('')).map((o) => o.key)).toEqual([...keys].sort());
      expect(await store.list('nothing/')).toEqual([]);
      for (const o of await store.list('')) expect(o.size).toBe(Buffer.byteLength(o.key));
    });

    it('list with startAfter returns only the keys after it, in one request', async () => {
      const store = await mk();
      const keys = [1, 2, 3, 10].map((n) => `feedback/s1/${String(n).padStart(12, '0')}.json`);
      for (const k of [...keys, 'feedback/s2/000000000001.json']) await store.putIfAbsent(k, Buffer.from(k));
      store.resetStats();
      const after = await store.list('feedback/s1/', { startAfter: keys[1] });
      expect(after.map((o) => o.key)).toEqual(keys.slice(2));
      expect(store.stats.lists).toBe(1);
      // The key need not exist; past the last key nothing is listed, and the prefix still filters.
      expect(
        (await store.list('feedback/s1/', { startAfter: 'feedback/s1/000000000005.json' })).map((o) => o.key),
      ).toEqual([keys[3]]);
      expect(await store.list('feedback/s1/', { startAfter: keys[3] })).toEqual([]);
      expect((await store.list('feedback/', { startAfter: keys[3] })).map((o) => o.key)).toEqual([
        'feedback/s2/000000000001.json',
      ]);
    });

    it('getRange returns exactly [start, end) and refuses reads past the end', async () => {
      const store = await mk();
      const body = randomBytes(10_000);
      await store.putIfAbsent('blobs/sha256/' + sha256Hex(body), body);
      const key = 'blobs/sha256/' + sha256Hex(body);
      expect((await store.getRange(key, 0, 10)).equals(body.subarray(0, 10))).toBe(true);
      expect((await store.getRange(key, 1234, 5678)).equals(body.subarray(1234, 5678))).toBe(true);
      expect((await store.getRange(key, 9_999, 10_000)).equals(body.subarray(9_999))).toBe(true);
      expect((await store.getRange(key, 500, 500)).length).toBe(0);
      await expect(store.getRange(key, 9_000, 10_001)).rejects.toThrow(/shorter than the requested range/);
    });

    it('compareAndSwap creates with undefined, wins with the current etag, loses with a stale one', async () => {
      const store = await mk();
      const e1 = await store.compareAndSwap('fleet/head.json', Buffer.from('v1'), undefined);
      expect((await store.head('fleet/head.json'))?.etag).toBe(e1);
      const lostCreate = await store
        .compareAndSwap('fleet/head.json', Buffer.from('x'), undefined)
        .catch((e: unknown) => e);
      expect(lostCreate).toBeInstanceOf(ConflictError);
      const e2 = await store.compareAndSwap('fleet/head.json', Buffer.from('v2'), e1);
      expect(e2).not.toBe(e1);
      const stale = await store
        .compareAndSwap('fleet/head.json', Buffer.from('v3'), e1)
        .catch((e: unknown) => e);
      expect(stale).toBeInstanceOf(ConflictError);
      expect((stale as Error).message).toMatch(/changed by another writer/);
      const got = await store.get('fleet/head.json');
      expect(got?.body.toString()).toBe('v2');
      expect(got?.etag).toBe(e2);
    });

    it('getIfChanged: 304 with one request and no body when unchanged, the object when changed', async () => {
      const store = await mk();
      const e1 = await store.compareAndSwap('fleet/head.json', Buffer.from('head one'), undefined);
      store.resetStats();
      const same = await store.getIfChanged('fleet/head.json', e1);
      expect(same).toEqual({ notModified: true, etag: e1 });
      expect(store.stats.requests).toBe(1);
      expect(store.stats.bytesRead).toBe(0);

      const e2 = await store.compareAndSwap('fleet/head.json', Buffer.from('head two'), e1);
      const changed = await store.getIfChanged('fleet/head.json', e1);
      expect(changed?.notModified).toBe(false);
      if (changed && !changed.notModified) {
        expect(changed.object.body.toString()).toBe('head two');
        expect(changed.object.etag).toBe(e2);
      }
      const first = await store.getIfChanged('fleet/head.json', undefined);
      expect(first?.notModified).toBe(false);
      expect(await store.getIfChanged('fleet/missing.json', e1)).toBeUndefined();
    });

    it('delete removes an object; deleting a missing one is fine', async () => {
      const store = await mk();
      await store.putIfAbsent('blobs/sha256/' + 'a'.repeat(64), Buffer.from('x'));
      await store.delete('blobs/sha256/' + 'a'.repeat(64));
      expect(await store.head('blobs/sha256/' + 'a'.repeat(64))).toBeUndefined();
      await store.delete('blobs/sha256/' + 'a'.repeat(64));
    });

    it('refuses keys that could escape the registry', async () => {
      const store = await mk();
      for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', '.tmp/x', 'a\\b', '']) {
        await expect(store.putIfAbsent(key, Buffer.from('x'))).rejects.toBeInstanceOf(UserError);
        await expect(store.get(key)).rejects.toBeInstanceOf(UserError);
      }
      await expect(store.list('../')).rejects.toBeInstanceOf(UserError);
    });

    it('counts requests and bytes', async () => {
      const store = await mk();
      store.resetStats();
      await store.putIfAbsent('a/b.json', Buffer.from('12345'));
      await store.get('a/b.json');
      await store.head('a/b.json');
      await store.list('a/');
      expect(store.stats.bytesWritten).toBe(5);
      expect(store.stats.bytesRead).toBe(5);
      expect(store.stats.gets).toBe(1);
      expect(store.stats.lists).toBe(1);
      expect(store.stats.heads).toBeGreaterThanOrEqual(1);
      expect(store.stats.requests).toBe(
        store.stats.gets + store.stats.puts + store.stats.heads + store.stats.lists + store.stats.deletes,
      );
    });

    it('writes bodies above the multipart threshold whole, and reads ranges across parts', async () => {
      const store = await mk({ s3: { multipartThreshold: 6 * 1024 * 1024, partSize: 5 * 1024 * 1024 } });
      const body = randomBytes(11 * 1024 * 1024 + 123);
      const key = `blobs/sha256/${sha256Hex(body)}`;
      store.resetStats();
      expect((await store.putIfAbsent(key, body)).status).toBe('created');
      if (mk.backend !== 'fs') expect(store.stats.puts).toBeGreaterThanOrEqual(5); // create + 3 parts + complete
      expect((await store.head(key))?.size).toBe(body.length);
      const mid = 5 * 1024 * 1024 - 10;
      expect((await store.getRange(key, mid, mid + 20)).equals(body.subarray(mid, mid + 20))).toBe(true);
      expect((await store.get(key))?.body.equals(body)).toBe(true);
    });
  });
});
