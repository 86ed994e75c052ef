/** The data layer's public surface: dataset files -> documents -> token windows -> batches. */
export {
  DOCUMENT_SEPARATOR,
  SPLITS,
  readDocuments,
  resolveDataset,
  validateDataset,
  type DatasetFile,
  type DatasetLayout,
  type FileSummary,
  type ReadOptions,
  type SplitName,
  type TextFormat,
} from './reader.ts';
export {
  PackedWindows,
  batchesPerEpoch,
  documentCount,
  epochBatches,
  epochOrder,
  permutation,
  sequentialBatches,
  splitCorpus,
  tokenizeDocuments,
  type Batch,
  type BatchPosition,
  type Encode,
  type EpochOptions,
  type TokenCorpus,
} from './pack.ts';
export { prepareDataset, type DatasetOptions, type PreparedDataset } from './dataset.ts';
export { Utf8Scanner, type ScanIssue } from './utf8-scanner.ts';
