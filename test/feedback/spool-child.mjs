// A site process for the feedback crash tests (test/feedback/crash.test.ts), run from the built
// dist/ so it is a real, separate Node process that the test can SIGKILL. It records seeded request
// outcomes into windows, spools each window and uploads, printing one JSON line per step:
//   {"started":true}               once the spool is open (imports done; the work starts)
//   {"spooled":seq,"requests":n}  after FeedbackSpool.enqueue returned (the report is durable)
//   {"uploading":seq}              just before a registry write (crash=after-upload then writes,
//                                  prints {"uploaded":seq} and hangs until killed)
//   {"done":true,...}              at the end (crash=none)
// crash=after-spool hangs after spooling, before any upload, until killed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = process.env.EDGECTL_DIST;
const cfg = JSON.parse(process.argv[2]);
const { FeedbackSpool, FeedbackAccumulator } = await import(join(dist, 'src/feedback/index.js'));
const { openStore } = await import(join(dist, 'src/registry/open-store.js'));
const { parseKeyText } = await import(join(dist, 'src/registry/keys.js'));

const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const hang = () => setInterval(() => {}, 1 << 30);

const parsed = parseKeyText(readFileSync(cfg.keyFile, 'utf8'), cfg.keyFile);
const key = { keyid: parsed.keyid, publicKey: parsed.publicKey, secretKey: parsed.secretKey };
const inner = await openStore(cfg.registry);
const store = new Proxy(inner, {
  get(target, prop) {
    if (prop !== 'putIfAbsent') {
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    }
    return async (k, body) => {
      const seq = Number(/([0-9]{12})\.json$/.exec(k)?.[1]);
      say({ uploading: seq });
      const res = await target.putIfAbsent(k, body);
      if (cfg.crash === 'after-upload') {
        say({ uploaded: seq });
        hang();
        await new Promise(() => {});
      }
      return res;
    };
  },
});

const spool = await FeedbackSpool.open({ dir: cfg.spoolDir, site: cfg.site, key, store });
say({ started: true });
// A fake clock so every window of every run has its own, distinct start (double counting shows).
const acc = new FeedbackAccumulator(cfg.context, cfg.clockStart);
let t = cfg.clockStart;
let rng = cfg.seed >>> 0;
const next = () => {
  rng = (rng + 0x6d2b79f5) >>> 0;
  let x = rng;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
};
for (let w = 0; w < cfg.windows; w++) {
  const n = 1 + Math.floor(next() * cfg.maxRequests);
  for (let i = 0; i < n; i++) {
    const r = next();
    acc.record(
      r < 0.1
        ? { route: 'blocked' }
        : { route: r < 0.5 ? 'edge' : 'speculative', draftTokens: 4, acceptedTokens: 3, e2eMs: 50 },
    );
  }
  t += 1000;
  for (const win of acc.closeWindow(t)) {
    const seq = await spool.enqueue(win);
    say({ spooled: seq, requests: n, windowStart: win.windowStart });
  }
  if (cfg.crash !== 'after-spool' && cfg.uploadEachWindow) await spool.upload();
}
if (cfg.crash === 'after-spool') {
  say({ ready: true });
  hang();
} else {
  const res = await spool.upload();
  say({ done: true, ...res });
  await inner.close();
}
