// A site refuses grammar-constrained decoding against a verifier that does not announce the
// `token_masks` feature (issue #18): such a server would ignore the masks (or `response_format`)
// and answer with text outside the grammar. The "verifier" here is a minimal HTTP server that
// serves only an older /v1/identity.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HttpVerifier } from '../../src/verifier/client/http-verifier.js';

let server: Server;
let url = '';
const identity = (features: string[]) => ({
  model: { name: 'old', files: {}, digest: 'sha256:0' },
  tokenizer: { sha256: '0'.repeat(64), vocab_size: 1024 },
  max_context: 512,
  eos_token_ids: [0],
  features,
});
let features = ['first_token', 'verify_stream'];

beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(identity(features)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

it('refuses constrained decoding without token_masks, naming the feature', async () => {
  const old = await HttpVerifier.connect(url);
  try {
    expect(() => old.requireMaskSupport()).toThrow(/response_format: .*lack "token_masks"/);
  } finally {
    old.close();
  }
  features = [...features, 'token_masks'];
  const current = await HttpVerifier.connect(url);
  try {
    expect(() => current.requireMaskSupport()).not.toThrow();
  } finally {
    current.close();
  }
});
