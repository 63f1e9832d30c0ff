import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readRetailSample, retailSampleEvents, type DemoEvent } from '../../src/demo';
import { UserError, UsageError } from '../../src/errors';
import { validateEvent } from '../../transforms/schemas';

/** CI has the steering repo's shared/ beside the clone. */
const CSV = path.resolve(__dirname, '..', '..', '..', 'shared', 'datasets', 'online-retail-sample.csv');

type Track = Extract<DemoEvent, { type: 'track' }>;
type Identify = Extract<DemoEvent, { type: 'identify' }>;

describe('online-retail sample', () => {
  const sample = readRetailSample(CSV);
  const byId = new Map(sample.events.map((e) => [e.messageId, e]));
  const track = (no: string) => byId.get(`retail-${no}`) as Track;

  it('turns an invoice into one Order Completed whose revenue is Σ quantity × price (hand-computed)', () => {
    // 540157, customer 15311, 2011-01-05 11:41, five lines of quantity 1:
    // 0.65 (KEY FOB , GARAGE DESIGN) + 1.65 + 7.95 + 1.25 (METAL SIGN,CUPCAKE SINGLE HOOK) + 1.25 = 12.75
    const o = track('540157');
    expect(o).toMatchObject({
      type: 'track',
      event: 'Order Completed',
      userId: 'retail-15311',
      timestamp: '2011-01-05T11:41:00.000Z',
      properties: { order_id: '540157', revenue: 12.75, currency: 'GBP' },
    });
    // Quoted fields with embedded commas are read whole.
    const names = (o.properties.products as Array<{ name: string }>).map((p) => p.name);
    expect(names).toContain('KEY FOB , GARAGE DESIGN');
    expect(names).toContain('METAL SIGN,CUPCAKE SINGLE HOOK');
    expect(names).toHaveLength(5);

    // 565806, customer 15594: 12 × 1.25 + 24 × 1.65 + 12 × 1.65 = 15.00 + 39.60 + 19.80 = 74.40
    expect(track('565806').properties.revenue).toBe(74.4);
    expect(track('565806').userId).toBe('retail-15594');
  });

  it('uses the earliest line time when an invoice spans minutes', () => {
    // 541816 has lines at 15:56 and 15:57.
    expect(track('541816').timestamp).toBe('2011-01-21T15:56:00.000Z');
  });

  it('turns a cancellation into an Order Refunded with a positive total, never a purchase', () => {
    // C560855, customer 14410: -4 × 1.25, -1 × 2.55, -1 × 2.95, -1 × 2.95 → 5.00 + 2.55 + 2.95 + 2.95 = 13.45
    expect(track('C560855')).toMatchObject({
      event: 'Order Refunded',
      userId: 'retail-14410',
      properties: { order_id: 'C560855', total: 13.45, currency: 'GBP' },
    });
    expect(track('C560855').properties.revenue).toBeUndefined();
  });

  it('gives each customer one identify with the country, before their first order', () => {
    // Customer 12347 (Iceland) ordered on 2010-12-07 14:57 first.
    const ident = byId.get('retail-customer-12347') as Identify;
    expect(ident).toMatchObject({
      type: 'identify',
      userId: 'retail-12347',
      timestamp: '2010-12-07T14:56:59.000Z',
      traits: { country: 'Iceland', customer_id: '12347' },
    });
    const idents = sample.events.filter((e) => e.type === 'identify');
    expect(new Set(idents.map((e) => e.userId)).size).toBe(idents.length);
  });

  it('counts what it skipped and what it made (figures from the dataset README and the file)', () => {
    expect(sample.stats).toMatchObject({
      lines: 30000,
      customers: 3569,
      // 2,000 lines have an empty CustomerID (counted with Python's csv module; README: "about 2,000").
      skippedBlankCustomerLines: 2000,
      invalidLines: 0,
      firstDate: '2010-12-01',
      lastDate: '2011-12-09',
      shiftDays: 0,
      asOfDate: '2011-12-09',
    });
    expect(sample.stats.orders + sample.stats.refunds).toBe(sample.stats.invoices);
    expect(sample.events).toHaveLength(sample.stats.invoices + sample.stats.customers);
    for (const e of sample.events) {
      const v = validateEvent(e);
      if ('reason' in v) throw new Error(`${e.messageId}: ${v.reason}`);
    }
  });

  it('shifts by whole weeks so the last invoice lands in the week ending on the as-of date', () => {
    const shifted = readRetailSample(CSV, { shiftTo: '2026-11-23' });
    // 2011-12-09 (a Friday) → the last Friday on or before Monday 2026-11-23 is 2026-11-20.
    expect(shifted.stats.lastDate).toBe('2026-11-20');
    expect(shifted.stats.shiftDays % 7).toBe(0);
    expect(shifted.stats.asOfDate).toBe('2026-11-23');
    const o = shifted.events.find((e) => e.messageId === 'retail-540157') as Track;
    expect(new Date(o.timestamp).getUTCDay()).toBe(new Date('2011-01-05T00:00:00Z').getUTCDay());
    expect(o.timestamp.slice(11)).toBe('11:41:00.000Z');
    expect(o.properties.revenue).toBe(12.75);
    expect(() => readRetailSample(CSV, { shiftTo: 'next week' })).toThrow(UsageError);
  });

  describe('bad input', () => {
    let dir: string;
    beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-retail-'))));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      return p;
    };

    it('says which file is missing', () => {
      expect(() => retailSampleEvents(path.join(dir, 'nope.csv'))).toThrow(UserError);
      expect(() => retailSampleEvents(path.join(dir, 'nope.csv'))).toThrow(
        /Cannot read the retail sample .*nope\.csv/,
      );
    });

    it('names the missing columns', () => {
      const p = write('cols.csv', 'InvoiceNo,Quantity\n1,2\n');
      expect(() => retailSampleEvents(p)).toThrow(
        /lacks the column\(s\) StockCode, Description, InvoiceDate/,
      );
    });

    it('skips and counts unreadable lines, keeping every valid one', () => {
      const p = write(
        'mixed.csv',
        [
          'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country',
          '1,A,"X, Y",2,2011-01-01 10:00:00,1.005,100.0,France',
          '1,B,Z,three,2011-01-01 10:00:00,1.00,100.0,France',
          '2,B,Z,1,2011-13-01 10:00:00,1.00,100.0,France',
          '3,C,Z,1,2011-01-02 09:00,2.5,100.0,Germany',
          '4,D,Z,1,2011-01-02 09:00,abc,100.0,Germany',
          '5,D,Z,1,2011-01-03 09:00,3,,Germany',
        ].join('\n'),
      );
      const { events, stats } = readRetailSample(p);
      expect(stats).toMatchObject({
        lines: 6,
        invalidLines: 3,
        orders: 2,
        customers: 1,
        skippedBlankCustomerLines: 1,
        skippedBlankCustomerInvoices: 1,
      });
      expect(stats.invalidSamples).toEqual([
        'line 3: Quantity "three" is not a whole number',
        'line 4: InvoiceDate "2011-13-01 10:00:00" is not YYYY-MM-DD HH:MM[:SS]',
        'line 6: UnitPrice "abc" is not a decimal number',
      ]);
      // 2 × 1.005 = 2.01 exactly (binary floating point would give 2.0099999…); 1 × 2.5 = 2.50.
      const revenue = events.filter((e) => e.type === 'track').map((e) => (e as Track).properties.revenue);
      expect(revenue).toEqual([2.01, 2.5]);
      // The latest invoice's country wins.
      expect((events.find((e) => e.type === 'identify') as Identify).traits.country).toBe('Germany');
    });
  });
});
