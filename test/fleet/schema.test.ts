import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { canonicalSiteJson } from '../../src/fleet/canonical-site.js';
import { effectiveRuntime } from '../../src/fleet/site-schema.js';
import { checkSiteFiles, loadSiteDeclarations, siteFilesIn } from '../../src/fleet/site-files.js';
import type { SiteState } from '../../src/fleet/state.js';
import { canonicalJson } from '../../src/foundation/canonical-json.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { declaration, fakeDigest } from './fixtures.js';
import { siteYaml } from './registry-fixture.js';

describe('site declarations', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgectl-sites-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
  const problems = () =>
    checkSiteFiles(siteFilesIn(dir), (p) => p.replace(`${dir}/`, '')).problems.map(
      (p) => `${p.file}:${p.line}: ${p.field}: ${p.message}`,
    );

  it('normalizes a declaration: key id from the key, only the fields written, adapters from null', () => {
    const kp = generateKeyPair();
    const key = Buffer.from(kp.publicKey).toString('base64');
    write(
      'a.yaml',
      `name: a\npublicKey: ${key}\nruntime:\n  listen: "[::1]:9000"\nassignments:\n  adapters:\n`,
    );
    const [site] = loadSiteDeclarations(dir);
    expect(site?.declaration).toEqual({
      name: 'a',
      labels: {},
      publicKey: { keyid: kp.keyid, key },
      runtime: { listen: '[::1]:9000' },
    });
    expect(site?.assignments).toEqual({ adapters: [] });
    expect(effectiveRuntime(site!.declaration)).toEqual({ listen: '[::1]:9000', interval: '30s' });
  });

  it('reports every problem with file:line and field', () => {
    const kp = generateKeyPair();
    const other = generateKeyPair();
    write(
      'b.yaml',
      `name: b\nlabels:\n  tier: 1\npublicKey:\n  keyid: ${other.keyid}\n  key: ${Buffer.from(kp.publicKey).toString('base64')}\n`,
    );
    write('c.yaml', `name: c\npublicKey: bm90IGEga2V5\nruntime:\n  listen: localhost\n  interval: soon\n`);
    write('d.yaml', siteYaml('d', { adapters: ['adapter/support@1.0.0', 'adapter/support@1.1.0'] }));
    write('e.yaml', 'name: e\nname: e\n');
    expect(problems()).toEqual([
      'b.yaml:3: labels.tier: label values must be strings (quote numbers: "1")',
      `b.yaml:5: publicKey.keyid: does not match the key (expected ${kp.keyid})`,
      'c.yaml:2: publicKey: must be a base64 Ed25519 public key (32 bytes)',
      'c.yaml:4: runtime.listen: must be host:port, e.g. 127.0.0.1:8080',
      'c.yaml:5: runtime.interval: must be a duration like 30s, 5m or 1h',
      'd.yaml:9: assignments.adapters.1: adapter adapter/support is listed twice (also at adapters.0); a site runs one version of an adapter',
      'e.yaml:1: : Map keys must be unique',
    ]);
  });

  it('runtime.cloud: kept as written (the key only by its variable), each bad field named', () => {
    const key = Buffer.from(generateKeyPair().publicKey).toString('base64');
    const cloud = 'runtime:\n  cloud:\n    url: https://api.example.com/v1\n    model: hosted-7b\n';
    write('f.yaml', `name: f\npublicKey: ${key}\n${cloud}    apiKeyEnv: CLOUD_API_KEY\n    api: chat\n`);
    const [site] = loadSiteDeclarations(dir);
    const expected = {
      url: 'https://api.example.com/v1',
      model: 'hosted-7b',
      apiKeyEnv: 'CLOUD_API_KEY',
      api: 'chat',
    };
    expect(site?.declaration.runtime).toEqual({ cloud: expected });
    expect(effectiveRuntime(site!.declaration).cloud).toEqual(expected);
    write(
      'g.yaml',
      `name: g\npublicKey: ${key}\nruntime:\n  cloud:\n    url: ftp://x\n    model: ""\n    apiKeyEnv: sk-live-123\n    api: responses\n    key: x\n`,
    );
    write('h.yaml', `name: h\npublicKey: ${key}\nruntime:\n  cloud:\n    url: https://api.example.com/v1\n`);
    expect(problems()).toEqual([
      'g.yaml:5: runtime.cloud.url: must be an http(s) base URL, e.g. https://api.example.com/v1',
      'g.yaml:6: runtime.cloud.model: must not be empty',
      'g.yaml:7: runtime.cloud.apiKeyEnv: must be an environment variable name (letters, digits, _), not the key itself',
      'g.yaml:8: runtime.cloud.api: must be completions or chat',
      'g.yaml:9: runtime.cloud.key: unknown field "key"',
      'h.yaml:5: runtime.cloud.model: must be the model name the server knows',
    ]);
  });

  it('loadSiteDeclarations throws one UserError (exit 2) listing every problem', () => {
    write('x.yaml', siteYaml('y'));
    let err: unknown;
    try {
      loadSiteDeclarations(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toMatch(/x\.yaml:1: name: "y" must equal the file name "x"/);
  });

  it('a missing sites directory is an empty fleet', () => {
    expect(loadSiteDeclarations(join(dir, 'nope'))).toEqual([]);
  });
});

describe('the example fleet in sites/', () => {
  it('declares store-001..003 with real keys and the example refs', () => {
    const sites = loadSiteDeclarations(join(REPO_ROOT, 'sites'));
    expect(sites.map((s) => s.declaration.name)).toEqual(['store-001', 'store-002', 'store-003']);
    expect(sites.map((s) => s.declaration.labels)).toEqual([
      { region: 'eu-west', tier: 'branch' },
      { region: 'eu-west', tier: 'branch' },
      { region: 'us-east', tier: 'flagship' },
    ]);
    for (const s of sites) {
      expect(s.assignments).toEqual({
        model: 'model/draft@1.0.0',
        adapters: ['adapter/support@1.0.0'],
        policy: 'policy/default@1.0.0',
      });
    }
  });
});

describe('canonicalSiteJson', () => {
  const ref = (r: string) => ({ ref: r, manifestDigest: fakeDigest(r) });
  const cases: SiteState[] = [
    { declaration: declaration('a'), assignments: { adapters: [] } },
    {
      declaration: {
        ...declaration('b', { 'z-last': 'v', a: 'é', 'k.8s/x': '1' }),
        runtime: { verifier: 'https://v/é?q="x"', listen: '[::1]:1', interval: '1m' },
      },
      assignments: {
        model: ref('model/m@1.0.0'),
        adapters: [ref('adapter/a@1.0.0'), ref('adapter/b@2.0.0')],
        policy: ref('policy/p@1.0.0'),
      },
    },
    // Shapes the fast path does not know fall back to the generic serializer.
    {
      declaration: { ...declaration('c'), extra: { n: 1.5, list: [true, null] } } as never,
      assignments: { adapters: [], future: 1 } as never,
    },
    {
      declaration: { ...declaration('d'), labels: { n: 1 } } as never,
      assignments: { adapters: [], model: undefined },
    },
  ];
  it('equals RFC 8785 canonical JSON for known and unknown shapes', () => {
    for (const site of cases) expect(canonicalSiteJson(site)).toBe(canonicalJson(site));
  });
});
