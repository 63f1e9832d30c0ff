import { loadRudderStackTransformation as load, type Event } from '../helpers/rudderstack-transformation';

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

  it('compares ids, emails and event names without U+0000, as the collector lands them', () => {
    expect(transformEvent({ type: 'track', event: 'A', userId: 'qa-bot\u0000' }, metadata)).toBeUndefined();
    expect(
      transformEvent(
        { type: 'identify', userId: 'u1', traits: { email: 'ann@example.com\u0000' } },
        metadata,
      ),
    ).toBeUndefined();
    expect(
      transformEvent({ type: 'track', event: 'Email Opened\u0000', userId: 'u5' }, metadata),
    ).toMatchObject({ event: 'Email Opened\u0000', properties: { non_activity: true } });
  });

  it('matches numeric ids, alias previous ids and only the user own email', () => {
    const withIds = load({ INTERNAL_USER_IDS: ['12345'] });
    expect(
      withIds({ type: 'track', event: 'A', userId: 12345 } as unknown as Event, metadata),
    ).toBeUndefined();
    expect(transformEvent({ type: 'alias', previousId: 'qa-bot', userId: 'u9' }, metadata)).toBeUndefined();
    // an address without @ is no email; an invitee's address or a group's contact is not the user's
    for (const e of [
      { type: 'identify', userId: 'u6', traits: { email: 'example.com' } },
      { type: 'track', event: 'Invite Sent', userId: 'u7', properties: { email: 'guest@example.com' } },
      { type: 'group', userId: 'u8', groupId: 'g', traits: { email: 'billing@example.com' } },
    ]) {
      expect(transformEvent(JSON.parse(JSON.stringify(e)) as Event, metadata)).toEqual(e);
    }
  });

  it("drops cdp-lifecycle's own synced identifies (context.cdp_lifecycle), not other identifies", () => {
    const synced = {
      type: 'identify',
      userId: 'u9',
      traits: { lifecycle_status: 'active' },
      context: { cdp_lifecycle: { version: '0.1.0', run_id: 'r1' } },
    };
    expect(transformEvent(synced, metadata)).toBeUndefined();
    const own = {
      type: 'identify',
      userId: 'u9',
      traits: { plan: 'pro' },
      context: { library: { name: 'x' } },
    };
    expect(transformEvent(JSON.parse(JSON.stringify(own)) as Event, metadata)).toEqual(own);
    // a track that happens to carry the key is the customer's, not the sync's
    const track = { type: 'track', userId: 'u9', event: 'A', context: { cdp_lifecycle: {} } };
    expect(transformEvent(JSON.parse(JSON.stringify(track)) as Event, metadata)).toEqual(track);
  });

  it('reads context.cdp_lifecycle: null as not set, as the sync always sends an object', () => {
    // `typeof null` is 'object': a null key used to drop the identify as the sync's echo, so it never landed
    const unset = {
      type: 'identify',
      userId: 'u9',
      traits: { plan: 'pro' },
      context: { cdp_lifecycle: null },
    };
    expect(transformEvent(JSON.parse(JSON.stringify(unset)) as Event, metadata)).toEqual(unset);
    // what the sync sends (src/sync: `cdp_lifecycle: { version, run_id }`) is still dropped, also empty
    for (const cdp_lifecycle of [{ version: '0.1.0', run_id: 'r1' }, {}]) {
      expect(
        transformEvent({ type: 'identify', userId: 'u9', context: { cdp_lifecycle } }, metadata),
      ).toBeUndefined();
    }
  });

  it('judges the email the identify lands: top-level traits win over context.traits, even when empty', () => {
    // its landed traits are {"email": ""} (top-level traits merged over context.traits): not an internal user
    const own = {
      type: 'identify',
      userId: 'u10',
      traits: { email: '' },
      context: { traits: { email: 'x@example.com' } },
    };
    expect(transformEvent(JSON.parse(JSON.stringify(own)) as Event, metadata)).toEqual(own);
    const nulled = { ...own, traits: { email: null } };
    expect(transformEvent(JSON.parse(JSON.stringify(nulled)) as Event, metadata)).toEqual(nulled);
    // without the key at the top level, context.traits' email is the one that lands, and is judged
    expect(
      transformEvent(
        {
          type: 'identify',
          userId: 'u10',
          traits: { plan: 'pro' },
          context: { traits: { email: 'x@example.com' } },
        },
        metadata,
      ),
    ).toBeUndefined();
    // and the other way round: an internal top-level email wins over a customer's in context.traits
    expect(
      transformEvent(
        {
          type: 'identify',
          userId: 'u10',
          traits: { email: 'ann@yourcompany.com' },
          context: { traits: { email: 'x@customer.io' } },
        },
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
        { type: 'track', event: 'Email Delivered', userId: 'u5', properties: { campaign: 'c1' } },
        metadata,
      ),
    ).toEqual({
      type: 'track',
      event: 'Email Delivered',
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
    // the models match event_text exactly (SPEC 4.3): another spelling is activity there, and so it stays here
    expect(transformEvent({ type: 'track', event: 'email delivered', userId: 'u5' }, metadata)).toEqual({
      type: 'track',
      event: 'email delivered',
      userId: 'u5',
    });
    // properties that are no object stay as sent, for the collector to refuse (a merge would spread a
    // string into keys "0", "1", …)
    for (const properties of ['abc', [1, 2]]) {
      expect(
        transformEvent({ type: 'track', event: 'Email Delivered', userId: 'u5', properties }, metadata),
      ).toEqual({ type: 'track', event: 'Email Delivered', userId: 'u5', properties });
    }
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
