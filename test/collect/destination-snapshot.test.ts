/**
 * Snapshot tests in the style of segmentio/action-destinations: for every action, the landing rows it
 * produces for a fixed event with only the required fields and with all fields. The rows are captured from
 * the write set (no warehouse needed), so the snapshot shows exactly what would be inserted.
 */
import { createTestIntegration, type SegmentEvent } from '@segment/actions-core';
import destination from '../../destinations/cdp-lifecycle';
import { WriteSet, writeSetStorage } from '../../destinations/cdp-lifecycle/client';

const testDestination = createTestIntegration(destination);
const settings = { warehouseUrl: 'duckdb://:memory:', rawSchema: 'cdp' };

const required: Record<string, Partial<SegmentEvent> & Record<string, unknown>> = {
  track: { type: 'track', messageId: 'm-track', userId: 'u1', event: 'Product Viewed' },
  identify: { type: 'identify', messageId: 'm-identify', anonymousId: 'a1' },
  page: { type: 'page', messageId: 'm-page', anonymousId: 'a1' },
  screen: { type: 'screen', messageId: 'm-screen', userId: 'u1' },
  alias: { type: 'alias', messageId: 'm-alias', userId: 'u1', previousId: 'a1' },
  group: { type: 'group', messageId: 'm-group', userId: 'u1', groupId: 'g1' },
};

const allFields = {
  anonymousId: 'a1',
  userId: 'u1',
  name: 'Home',
  properties: { revenue: '19.99', currency: 'EUR', items: [{ sku: 'X-1', qty: 2 }] },
  traits: { plan: 'pro', email: 'ann@example.com' },
  context: {
    ip: '10.1.2.3',
    library: { name: 'analytics-node', version: '3.1.0' },
    traits: { plan: 'free' },
  },
  timestamp: '2024-05-01T10:00:00.000Z',
  originalTimestamp: '2024-05-01T09:59:58.000Z',
  sentAt: '2024-05-01T09:59:59.000Z',
  receivedAt: '2024-05-01T10:00:01.000Z',
};

async function rowsOf(slug: string, event: Partial<SegmentEvent>): Promise<unknown> {
  const ws = new WriteSet('cdp');
  await writeSetStorage.run(ws, () =>
    testDestination.testAction(slug, {
      // The fixed receivedAt keeps the snapshot stable; the collector always sets one.
      event: { receivedAt: '2024-05-01T10:00:01.000Z', ...event },
      mapping: undefined,
      settings,
      useDefaultMappings: true,
    }),
  );
  return Object.fromEntries(ws.rows);
}

describe.each(Object.keys(required))(
  "Testing snapshot for cdp-lifecycle's %s destination action:",
  (slug) => {
    it('required fields', async () => {
      const event: Record<string, unknown> = { ...required[slug] };
      // createTestEvent fills in optional fields; null them so only the required ones remain. actions-core
      // itself reads context.personas, so the context stays an (empty) object.
      for (const k of ['timestamp', 'sentAt', 'properties', 'traits', 'anonymousId', 'userId']) {
        if (!(k in event)) event[k] = null;
      }
      event.context = {};
      expect(await rowsOf(slug, event as Partial<SegmentEvent>)).toMatchSnapshot();
    });

    it('all fields', async () => {
      expect(
        await rowsOf(slug, { ...required[slug], ...allFields } as Partial<SegmentEvent>),
      ).toMatchSnapshot();
    });
  },
);
