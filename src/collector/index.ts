export {
  Ingestor,
  type IngestorOptions,
  type IngestMeta,
  type IngestResult,
  type RejectedEvent,
} from './ingest';
export {
  startCollector,
  installShutdownHandlers,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_BATCH_EVENTS,
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  type Collector,
  type CollectorOptions,
} from './server';
export {
  checkLoadFiles,
  describeInputs,
  loadFiles,
  LoadReadFailed,
  LoadStopped,
  type LoadCommitted,
  type LoadOptions,
  type LoadSummary,
  type BadLine,
} from './load';
