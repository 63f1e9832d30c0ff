import * as fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { UserError, UsageError } from '../errors';
import { DAY_MS, isoDate, parseIsoDate, type DemoEvent, type IdentifyEvent, type TrackEvent } from './events';

/**
 * Turns the UCI "Online Retail" sample (real invoice lines of a UK online shop, Dec 2010 – Dec 2011) into
 * Segment e-commerce spec calls:
 *
 * - each invoice of a known customer → one `Order Completed` track, `revenue` = Σ Quantity × UnitPrice of its
 *   lines, computed exactly (prices scaled to integers) and rounded half away from zero to 2 decimals,
 *   `currency` GBP, its lines as `products`, timestamp = the invoice's earliest line;
 * - each cancellation (InvoiceNo starting with `C`) of a known customer → one `Order Refunded` track with
 *   `total` = the refunded amount as a positive number. It is not a purchase (never in `purchase_events`), so
 *   RFM monetary stays the gross order value; it is activity (the customer did something) unless you list it
 *   in `lifecycle__non_activity_events`;
 * - lines without a CustomerID cannot be attributed to anyone: skipped and counted (lines and invoices);
 * - lines that cannot be read (bad number or date) are skipped and counted, with the first reasons kept;
 * - each customer → one `identify` at their first invoice, traits `country` (from their latest invoice: a few
 *   customers ordered from two countries), `customer_id`, `source`.
 *
 * User ids are `retail-<CustomerID>` (the `.0` pandas left in the file removed), so the sample can share a
 * warehouse with other demo data without id collisions. InvoiceDate has no zone; it is read as UTC.
 *
 * Dates: with `shiftTo`, every timestamp moves forward by a whole number of weeks (weekdays and the shop's
 * weekly rhythm are kept) so that the last invoice falls in the 7 days ending on `shiftTo`; build with
 * `lifecycle__as_of_date = shiftTo` and the RFM grid and statuses read as "today". Without it the original
 * dates are kept and `stats.asOfDate` (the last invoice date, 2011-12-09) is the as-of date to use.
 */
export interface RetailOptions {
  /** `YYYY-MM-DD`: shift the data by whole weeks so its last invoice falls in the week ending on this date. */
  shiftTo?: string;
  /** Prefix of every user id. Default `retail-`. */
  userIdPrefix?: string;
}

export interface RetailStats {
  lines: number;
  invoices: number;
  orders: number;
  refunds: number;
  customers: number;
  /** Lines (and the invoices they make up) without a CustomerID, skipped. */
  skippedBlankCustomerLines: number;
  skippedBlankCustomerInvoices: number;
  /** Orders whose lines add up to 0 (free samples, zero prices): kept, with revenue 0. */
  zeroRevenueOrders: number;
  invalidLines: number;
  /** The first few reasons lines were refused, `line N: why`. */
  invalidSamples: string[];
  /** First and last invoice dates, after shifting. */
  firstDate: string;
  lastDate: string;
  /** Days every timestamp moved forward (a multiple of 7; 0 without `shiftTo`). */
  shiftDays: number;
  /** The as-of date the data was prepared for: `shiftTo`, or the last invoice date. */
  asOfDate: string;
}

export interface RetailSample {
  events: DemoEvent[];
  stats: RetailStats;
}

const REQUIRED = [
  'InvoiceNo',
  'StockCode',
  'Description',
  'Quantity',
  'InvoiceDate',
  'UnitPrice',
  'CustomerID',
  'Country',
];
/** Prices are scaled to integers with this many decimals so that sums are exact. */
const PRICE_SCALE_DIGITS = 4;
const PRICE_SCALE = 10 ** PRICE_SCALE_DIGITS;

interface Line {
  quantity: number;
  /** UnitPrice × PRICE_SCALE, exact. */
  priceScaled: number;
  stockCode: string;
  description: string;
  ms: number;
}

interface Invoice {
  no: string;
  customer: string;
  country: string;
  lines: Line[];
  ms: number;
}

/** Reads the sample and converts it; see the module comment for the rules. */
export function readRetailSample(csvPath: string, opts: RetailOptions = {}): RetailSample {
  let text: string;
  try {
    text = fs.readFileSync(csvPath, 'utf8');
  } catch (err) {
    throw new UserError(
      `Cannot read the retail sample ${csvPath}: check that the file exists and is readable.`,
      {
        cause: err,
      },
    );
  }
  let records: string[][];
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new UserError(
      `The retail sample ${csvPath} is not valid CSV (${(err as Error).message}): use the UCI Online Retail CSV export.`,
      { cause: err },
    );
  }
  const header = records[0] ?? [];
  const col = new Map(header.map((h, i) => [h.trim(), i]));
  const missing = REQUIRED.filter((h) => !col.has(h));
  if (missing.length > 0) {
    throw new UserError(
      `The retail sample ${csvPath} lacks the column(s) ${missing.join(', ')}: use the UCI Online Retail CSV layout (${REQUIRED.join(', ')}).`,
    );
  }
  const get = (r: string[], name: string) => (r[col.get(name) as number] ?? '').trim();

  let shiftDays = 0;
  const stats: RetailStats = {
    lines: 0,
    invoices: 0,
    orders: 0,
    refunds: 0,
    customers: 0,
    skippedBlankCustomerLines: 0,
    skippedBlankCustomerInvoices: 0,
    zeroRevenueOrders: 0,
    invalidLines: 0,
    invalidSamples: [],
    firstDate: '',
    lastDate: '',
    shiftDays: 0,
    asOfDate: '',
  };
  const invoices = new Map<string, Invoice>();
  const blankInvoices = new Set<string>();
  const refuse = (lineNo: number, why: string) => {
    stats.invalidLines++;
    if (stats.invalidSamples.length < 5) stats.invalidSamples.push(`line ${lineNo}: ${why}`);
  };
  for (let i = 1; i < records.length; i++) {
    const r = records[i];
    const lineNo = i + 1;
    stats.lines++;
    const no = get(r, 'InvoiceNo');
    if (!no) {
      refuse(lineNo, 'no InvoiceNo');
      continue;
    }
    const quantity = Number(get(r, 'Quantity'));
    if (!Number.isInteger(quantity)) {
      refuse(lineNo, `Quantity "${get(r, 'Quantity')}" is not a whole number`);
      continue;
    }
    const priceScaled = scaledDecimal(get(r, 'UnitPrice'));
    if (priceScaled === undefined) {
      refuse(lineNo, `UnitPrice "${get(r, 'UnitPrice')}" is not a decimal number`);
      continue;
    }
    const ms = parseInvoiceDate(get(r, 'InvoiceDate'));
    if (ms === undefined) {
      refuse(lineNo, `InvoiceDate "${get(r, 'InvoiceDate')}" is not YYYY-MM-DD HH:MM[:SS]`);
      continue;
    }
    const customer = get(r, 'CustomerID').replace(/\.0+$/, '');
    if (!customer) {
      stats.skippedBlankCustomerLines++;
      blankInvoices.add(no);
      continue;
    }
    let inv = invoices.get(no);
    if (!inv) invoices.set(no, (inv = { no, customer, country: get(r, 'Country'), lines: [], ms }));
    inv.ms = Math.min(inv.ms, ms);
    inv.lines.push({
      quantity,
      priceScaled,
      stockCode: get(r, 'StockCode'),
      description: get(r, 'Description'),
      ms,
    });
  }
  stats.skippedBlankCustomerInvoices = [...blankInvoices].filter((no) => !invoices.has(no)).length;

  const sorted = [...invoices.values()].sort((a, b) => a.ms - b.ms || a.no.localeCompare(b.no));
  if (sorted.length === 0) {
    throw new UserError(`The retail sample ${csvPath} has no invoice of a known customer: nothing to load.`);
  }
  const lastMs = sorted[sorted.length - 1].ms;
  if (opts.shiftTo !== undefined) {
    const target = parseIsoDate(opts.shiftTo);
    if (target === undefined) {
      throw new UsageError(`The retail shift date "${opts.shiftTo}" is not a calendar date: use YYYY-MM-DD.`);
    }
    const lastDay = Math.floor(lastMs / DAY_MS);
    shiftDays = Math.floor((target / DAY_MS - lastDay) / 7) * 7;
  }
  const shift = shiftDays * DAY_MS;
  const prefix = opts.userIdPrefix ?? 'retail-';

  const firstOrder = new Map<string, Invoice>();
  const lastOrder = new Map<string, Invoice>();
  const tracks: TrackEvent[] = [];
  for (const inv of sorted) {
    stats.invoices++;
    if (!firstOrder.has(inv.customer)) firstOrder.set(inv.customer, inv);
    lastOrder.set(inv.customer, inv);
    const cents = centsOf(inv.lines);
    const products = inv.lines.map((l) => ({
      product_id: l.stockCode,
      sku: l.stockCode,
      name: l.description,
      price: l.priceScaled / PRICE_SCALE,
      quantity: Math.abs(l.quantity),
    }));
    const base = {
      type: 'track' as const,
      messageId: `retail-${inv.no}`,
      timestamp: new Date(inv.ms + shift).toISOString(),
      userId: prefix + inv.customer,
      context: { library: { name: 'cdp-lifecycle-retail-sample', version: '1' } },
    };
    if (inv.no.startsWith('C')) {
      stats.refunds++;
      tracks.push({
        ...base,
        event: 'Order Refunded',
        properties: { order_id: inv.no, total: Math.abs(cents) / 100, currency: 'GBP', products },
      });
    } else {
      stats.orders++;
      if (cents === 0) stats.zeroRevenueOrders++;
      tracks.push({
        ...base,
        event: 'Order Completed',
        properties: { order_id: inv.no, revenue: cents / 100, currency: 'GBP', products },
      });
    }
  }
  const identifies: IdentifyEvent[] = [...firstOrder.values()].map((first) => ({
    type: 'identify',
    messageId: `retail-customer-${first.customer}`,
    // Just before the first invoice, as a shop identifies a customer at checkout (never on the day before).
    timestamp: new Date(Math.max(first.ms - 1000, first.ms - (first.ms % DAY_MS)) + shift).toISOString(),
    userId: prefix + first.customer,
    traits: {
      country: (lastOrder.get(first.customer) as Invoice).country,
      customer_id: first.customer,
      source: 'online-retail-sample',
    },
    context: { library: { name: 'cdp-lifecycle-retail-sample', version: '1' } },
  }));
  stats.customers = identifies.length;
  stats.firstDate = isoDate(sorted[0].ms + shift);
  stats.lastDate = isoDate(lastMs + shift);
  stats.shiftDays = shiftDays;
  stats.asOfDate = opts.shiftTo ?? isoDate(lastMs);

  const events: DemoEvent[] = [...identifies, ...tracks].sort((a, b) =>
    a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0,
  );
  return { events, stats };
}

/** The events only (see `readRetailSample` for the counts of what was skipped). */
export function retailSampleEvents(csvPath: string, opts: RetailOptions = {}): DemoEvent[] {
  return readRetailSample(csvPath, opts).events;
}

/** `"4.15"` → 41500 (with 4 scale digits); undefined when not a plain decimal. */
function scaledDecimal(text: string): number | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return undefined;
  const frac = (m[3] ?? '').padEnd(PRICE_SCALE_DIGITS, '0');
  // More decimals than the scale would need rounding: the real data has at most 3.
  if (frac.length > PRICE_SCALE_DIGITS) return undefined;
  const v = Number(m[2]) * PRICE_SCALE + Number(frac);
  return m[1] === '-' ? -v : v;
}

/** Σ quantity × price, exactly, then rounded half away from zero to cents. */
function centsOf(lines: Line[]): number {
  const scaled = lines.reduce((s, l) => s + l.quantity * l.priceScaled, 0);
  const perCent = PRICE_SCALE / 100;
  return Math.sign(scaled) * Math.round(Math.abs(scaled) / perCent);
}

function parseInvoiceDate(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (!m) return undefined;
  const day = parseIsoDate(`${m[1]}-${m[2]}-${m[3]}`);
  if (day === undefined || Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return undefined;
  return day + ((Number(m[4]) * 60 + Number(m[5])) * 60 + Number(m[6] ?? 0)) * 1000;
}
