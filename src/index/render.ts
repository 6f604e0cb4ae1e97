/**
 * Plain-text renderings of the index commands' results (the --json forms are the results themselves).
 */
import type { IndexQuerySummary, IndexWriteSummary } from './service.js';

export function renderWrite(verb: string, r: IndexWriteSummary): string[] {
  const m = r.manifest;
  return [
    `${verb} ${r.dir} in ${(r.ms / 1000).toFixed(1)} s`,
    `  ${m.documents} documents, ${m.passages} passages, ${m.tombstones} tombstoned, ${m.segments.length} segment(s); newest document ${m.newestDocumentTime}`,
    `  added ${r.added}, changed ${r.changed}, deleted ${r.deleted}, unchanged ${r.unchanged}; new segments: ${r.newSegments.join(', ') || 'none'}`,
    `  embedder ${m.embedder.name} ${m.embedder.digest} (dim ${m.embedder.dim})`,
  ];
}

export function renderQuery(r: IndexQuerySummary): string[] {
  const lines = [
    `${r.passages.length} passage(s), ${r.mode}, ${r.ms.toFixed(1)} ms${r.truncated ? ' (query truncated)' : ''}`,
  ];
  r.passages.forEach((p, i) => {
    const ranks = `bm25 ${p.bm25Rank ?? '-'}, dense ${p.denseRank ?? '-'}`;
    lines.push(`${String(i + 1).padStart(2)}. ${p.id}  score ${p.score.toFixed(4)}  (${ranks})`);
    lines.push(`    ${p.text.length > 160 ? `${p.text.slice(0, 157)}...` : p.text}`);
  });
  return lines;
}
