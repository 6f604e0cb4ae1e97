/**
 * The index layer (docs/architecture.md "Layers", docs/formats.md "Index"): hybrid retrieval over a
 * local directory of immutable segments. Above `inference` (it runs the sentence encoder with the
 * project's ONNX engine), below `artifact`, `site` and `runtime`, which publish, sync and serve it.
 */
export {
  buildIndex,
  compactIndex,
  updateIndex,
  checkEmbedder,
  type BuildOptions,
  type BuildResult,
} from './build.js';
export { readCorpus, type CorpusDocument } from './documents.js';
export { Embedder, embedderDirFiles, embedderFilesDigest, type EmbedderFile } from './embedder.js';
export {
  DEFAULT_CHUNKING,
  INDEX_FORMAT,
  MANIFEST_FILE,
  TOMBSTONES_FILE,
  indexManifestSchema,
  readIndexManifest,
  type Chunking,
  type EmbedderInfo,
  type IndexFile,
  type IndexManifest,
  type SegmentEntry,
} from './manifest.js';
export {
  defaultNprobe,
  openIndex,
  RRF_K,
  type IndexReader,
  type OpenOptions,
  type QueryMode,
  type QueryOptions,
  type QueryPassage,
  type QueryResult,
} from './reader.js';
export {
  EMBEDDER_HINT_FILE,
  embedderFor,
  indexBuild,
  indexCompact,
  indexUpdate,
  queryIndexDir,
  type IndexQuerySummary,
  type IndexWriteSummary,
} from './service.js';
