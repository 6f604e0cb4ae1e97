/**
 * The live view of `rollout status --watch` (ink): one frame shows the waves, each site with its
 * ref and feedback, and the current step's metrics with value, evidence, boundary and samples.
 */
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { expect, it } from 'vitest';
import type { RolloutReport } from '../../src/rollout/service.js';
import { RolloutTree } from '../../src/ui/rollout-watch.js';

const report: RolloutReport = {
  registry: 'file:/tmp/r',
  fleetSeq: 12,
  rollout: {
    id: 'support-1.2.0-ab12',
    status: 'running',
    candidate: 'adapter/support@1.2.0',
    slot: 'adapters',
    identity: 'adapter/support',
    selector: 'tier=branch',
    step: 1,
    waves: [
      { step: 1, size: 1, sites: ['store-002'], state: 'current' },
      { step: 2, size: 3, sites: ['store-001', 'store-003'], state: 'pending' },
    ],
    canary: ['store-002'],
    startedAt: '2026-11-22T05:00:00.000Z',
    endedAt: null,
    reason: null,
    pauseReason: null,
    previous: {
      'store-001': 'adapter/support@1.1.0',
      'store-002': 'adapter/support@1.1.0',
      'store-003': null,
    },
  },
  outcome: 'running',
  exitCode: 0,
  reason: 'step 1: acceptance inconclusive',
  judgements: [],
  events: [
    {
      seq: 11,
      time: '2026-11-22T05:00:00.000Z',
      op: 'rollout.start',
      summary: 'start adapter/support@1.2.0 on 3 sites',
    },
  ],
  live: {
    decision: 'continue',
    reason: 'acceptance: inconclusive',
    sites: [
      {
        site: 'store-002',
        arm: 'canary',
        ref: 'adapter/support@1.2.0',
        windows: 4,
        requests: 80,
        errors: 1,
        acceptance: 0.41,
      },
      {
        site: 'store-001',
        arm: 'baseline',
        ref: 'adapter/support@1.1.0',
        windows: 5,
        requests: 90,
        errors: 0,
        acceptance: 0.7,
      },
    ],
    judgements: [
      {
        metric: 'acceptance',
        verdict: 'inconclusive',
        dryRun: false,
        value: { canary: 0.41, baseline: 0.7 },
        boundary: 100,
        evidence: { fail: 12.5, pass: 0.01 },
        samples: { canary: 1200, baseline: 2700 },
        sites: { canary: ['store-002'], baseline: ['store-001'] },
        reason: 'acceptance 0.410 vs 0.700: e-value 12.5 < 100',
      },
    ],
  },
};

it('draws waves, sites with their feedback, and metrics with their evidence', () => {
  const { lastFrame, unmount } = render(createElement(RolloutTree, { report }));
  const frame = lastFrame() ?? '';
  unmount();
  expect(frame).toContain('Rollout support-1.2.0-ab12');
  expect(frame).toContain('running');
  expect(frame).toMatch(/▶ wave 1: 1 sites/);
  expect(frame).toMatch(/store-002\s+adapter\/support@1\.2\.0\s+4 win\s+80 req\s+1 err\s+acc 0\.410/);
  expect(frame).toMatch(/store-003\s+\(none\)/);
  // The line wraps at the terminal width: compare with whitespace collapsed.
  expect(frame.replace(/\s+/g, ' ')).toContain(
    '… acceptance: inconclusive canary 0.41 vs baseline 0.7 | evidence fail 12.5 / pass 0.01 (boundary 100) | samples 1200/2700',
  );
  expect(frame).toContain('#11 start adapter/support@1.2.0 on 3 sites');
});
