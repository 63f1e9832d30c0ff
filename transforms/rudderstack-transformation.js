/**
 * cdp-lifecycle: RudderStack user transformation (JavaScript, v1).
 *
 * Paste this whole file into RudderStack (Collect > Transformations > Create) and connect it to the
 * destination that feeds the cdp-lifecycle collector (Webhook destination) or your warehouse. It imports
 * nothing, so it runs as is in RudderStack's sandbox.
 *
 * 1. Drops events of internal and test users (by user ID, anonymous ID or email domain), so employees and QA
 *    accounts never get a lifecycle status.
 * 2. Tags track events that are not user activity (messages you send, system events) with
 *    `properties.non_activity = true`, and records why in `properties.non_activity_reason`. List the same
 *    names in the `lifecycle__non_activity_events` var so the models agree.
 *
 * Edit the lists below; matching is case-insensitive and ignores surrounding spaces.
 */

const INTERNAL_USER_IDS = ['test-user', 'qa-bot'];
const INTERNAL_EMAIL_DOMAINS = ['example.com', 'yourcompany.com'];
const NON_ACTIVITY_EVENTS = [
  'Email Delivered',
  'Email Opened',
  'Push Notification Sent',
  'Subscription Renewed',
];

function normalise(value) {
  return typeof value === 'string' ? value.trim().toLowerCase() : '';
}

const internalIds = new Set(INTERNAL_USER_IDS.map(normalise));
const internalDomains = INTERNAL_EMAIL_DOMAINS.map(normalise);
const nonActivity = new Set(NON_ACTIVITY_EVENTS.map(normalise));

function emailOf(event) {
  const traits = event.traits || {};
  const contextTraits = (event.context && event.context.traits) || {};
  const properties = event.properties || {};
  return normalise(traits.email || contextTraits.email || properties.email);
}

function isInternal(event) {
  if (internalIds.has(normalise(event.userId)) || internalIds.has(normalise(event.anonymousId))) return true;
  const email = emailOf(event);
  if (!email) return false;
  const domain = email.slice(email.lastIndexOf('@') + 1);
  return internalDomains.some((d) => domain === d || domain.endsWith('.' + d));
}

export function transformEvent(event, metadata) {
  if (!event || isInternal(event)) return; // returning nothing drops the event
  if (event.type === 'track' && nonActivity.has(normalise(event.event))) {
    event.properties = Object.assign({}, event.properties, {
      non_activity: true,
      non_activity_reason: 'listed in NON_ACTIVITY_EVENTS',
    });
  }
  return event;
}
