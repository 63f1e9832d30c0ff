import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

type Event = Record<string, unknown>;
type TransformEvent = (event: Event, metadata: (e: Event) => Record<string, unknown>) => Event | undefined;

const FILE = path.join(__dirname, '..', '..', 'transforms', 'rudderstack-transformation.js');

/**
 * Runs the file the way RudderStack does: as a self-contained module in a sandbox with no require, no
 * process and no imports. `export` is the only module syntax it may use.
 */
function load(): TransformEvent {
  const source = fs.readFileSync(FILE, 'utf8');
  expect(source).not.toMatch(/\b(import|require)\s*[(\s'"{]/);
  const sandbox: Record<string, unknown> = { exports: {} };
  vm.runInNewContext(source.replace(/^export function /m, 'exports.transformEvent = function '), sandbox);
  return (sandbox.exports as { transformEvent: TransformEvent }).transformEvent;
}

const metadata = () => ({ sourceId: 'src-1', destinationId: 'dst-1' });

describe('RudderStack user transformation', () => {
  const transformEvent = load();

  it('drops internal and test users by id, anonymous id or email domain', () => {
    expect(transformEvent({ type: 'track', event: 'A', userId: 'QA-Bot ' }, metadata)).toBeUndefined();
    expect(transformEvent({ type: 'page', anonymousId: 'test-user' }, metadata)).toBeUndefined();
    expect(
      transformEvent({ type: 'identify', userId: 'u1', traits: { email: 'Ann@YourCompany.com' } }, metadata),
    ).toBeUndefined();
    expect(
      transformEvent(
        { type: 'track', event: 'A', userId: 'u2', context: { traits: { email: 'x@eu.example.com' } } },
        metadata,
      ),
    ).toBeUndefined();
  });

  it('keeps everyone else untouched', () => {
    const event = { type: 'identify', userId: 'u3', traits: { email: 'bo@customer.io' } };
    expect(transformEvent(JSON.parse(JSON.stringify(event)) as Event, metadata)).toEqual(event);
    // A look-alike domain is not internal.
    expect(
      transformEvent(
        { type: 'track', event: 'A', userId: 'u4', properties: { email: 'a@notexample.com' } },
        metadata,
      ),
    ).toEqual({
      type: 'track',
      event: 'A',
      userId: 'u4',
      properties: { email: 'a@notexample.com' },
    });
  });

  it('tags listed track events as non-activity, keeping their properties', () => {
    expect(
      transformEvent(
        { type: 'track', event: 'email delivered', userId: 'u5', properties: { campaign: 'c1' } },
        metadata,
      ),
    ).toEqual({
      type: 'track',
      event: 'email delivered',
      userId: 'u5',
      properties: {
        campaign: 'c1',
        non_activity: true,
        non_activity_reason: 'listed in NON_ACTIVITY_EVENTS',
      },
    });
    expect(
      transformEvent({ type: 'track', event: 'Push Notification Sent', userId: 'u5' }, metadata),
    ).toMatchObject({
      properties: { non_activity: true },
    });
    const activity = transformEvent({ type: 'track', event: 'Order Completed', userId: 'u5' }, metadata);
    expect(activity).toEqual({ type: 'track', event: 'Order Completed', userId: 'u5' });
    // Only track calls carry event names; a page named like a listed event is activity.
    expect(transformEvent({ type: 'page', name: 'Email Delivered', userId: 'u5' }, metadata)).toEqual({
      type: 'page',
      name: 'Email Delivered',
      userId: 'u5',
    });
  });
});
