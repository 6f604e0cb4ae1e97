/**
 * vitest reporter for CI's summary (.ci/run): writes, to the file named by EDGECTL_TEST_TIMINGS, each
 * test file's time with its project (preparing, importing, and every test and hook, so beforeAll
 * and afterAll count, unlike the JSON reporter's first-to-last-test span), each project's wall time
 * (first file queued to last file ended: unit runs before e2e, see vitest.config.ts), and the
 * counts of passed, failed and skipped tests. Without EDGECTL_TEST_TIMINGS it does nothing.
 */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export interface TestTimings {
  files: { project: string; file: string; ms: number }[];
  projects: Record<string, { ms: number; files: number }>;
  passed: number;
  failed: number;
  skipped: number;
}

export default class TimingsReporter implements Reporter {
  private readonly started = new Map<string, number>();
  private readonly spans: { project: string; file: string; start: number; end: number; ms: number }[] = [];

  onTestModuleQueued(m: TestModule): void {
    this.started.set(m.moduleId, Date.now());
  }

  onTestModuleEnd(m: TestModule): void {
    const end = Date.now();
    const start = this.started.get(m.moduleId) ?? end;
    const d = m.diagnostic();
    const ms = d.prepareDuration + d.collectDuration + d.setupDuration + d.duration;
    this.spans.push({ project: m.project.name, file: relative(process.cwd(), m.moduleId), start, end, ms });
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const out = process.env.EDGECTL_TEST_TIMINGS;
    if (!out) return;
    const t: TestTimings = { files: [], projects: {}, passed: 0, failed: 0, skipped: 0 };
    for (const m of modules) {
      for (const c of m.children.allTests()) {
        const s = c.result().state;
        if (s === 'passed') t.passed++;
        else if (s === 'failed') t.failed++;
        else t.skipped++;
      }
      // A file that failed to load has no tests; it counts as a failure.
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) t.failed++;
    }
    const byProject = new Map<string, { start: number; end: number; files: number }>();
    for (const s of this.spans) {
      t.files.push({ project: s.project, file: s.file, ms: Math.round(s.ms) });
      const p = byProject.get(s.project) ?? { start: s.start, end: s.end, files: 0 };
      byProject.set(s.project, {
        start: Math.min(p.start, s.start),
        end: Math.max(p.end, s.end),
        files: p.files + 1,
      });
    }
    for (const [name, p] of byProject) t.projects[name] = { ms: p.end - p.start, files: p.files };
    t.files.sort((a, b) => b.ms - a.ms);
    writeFileSync(out, `${JSON.stringify(t, null, 2)}\n`);
  }
}
