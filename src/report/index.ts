export {
  LIFECYCLE_STATUSES,
  RFM_SEGMENTS,
  STATUS_MEANING,
  earliestDailyDay,
  loadReportData,
  whyNoUsers,
  type GrowthRow,
  type LifecycleStatus,
  type ReportData,
  type RfmCell,
  type StatusCount,
  type TransitionCount,
} from './data';
export { formatTerminalReport, renderTerminalReport, type TerminalReportOptions } from './terminal';
export { renderHtmlReport, writeHtmlFile, writeHtmlReport, type HtmlReportOptions } from './html';
