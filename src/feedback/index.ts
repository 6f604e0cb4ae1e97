/**
 * Site feedback (docs/rollouts.md, docs/formats.md "Feedback reports"): reports (report.ts), the accumulator that builds
 * them from request outcomes (accumulator.ts), the crash-safe spool that uploads them (spool.ts),
 * the reporter the site daemon runs (reporter.ts), the fleet-wide index the uploader writes
 * (timeline.ts), and the readers the rollout controller uses (feed.ts over read.ts). Import from here.
 */
export * from './accumulator.js';
export * from './feed.js';
export * from './read.js';
export * from './report.js';
export * from './reporter.js';
export * from './spool.js';
export * from './timeline.js';
