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
 *    names in the `lifecycle__non_activity_events` var so the models agree: both match the event name
 *    exactly, as sent (SPEC 4.3).
 *
 * 3. Drops the identify calls cdp-lifecycle's own sync sent (they carry `context.cdp_lifecycle`, an object;
 *    a null one is not set), should the source they go to also feed this destination: the traits would
 *    otherwise loop back into `identifies`.
 *
 * Edit the lists below. User IDs and email domains match without case and surrounding spaces; the email is the
 * user's as it lands (`traits.email`, else `context.traits.email`: top-level traits are merged over
 * context.traits, so a top-level `"email": ""` wins), never a property such as an invitee's address.
 */

const INTERNAL_USER_IDS = ['test-user', 'qa-bot'];
const INTERNAL_EMAIL_DOMAINS = ['example.com', 'yourcompany.com'];
const NON_ACTIVITY_EVENTS = [
  'Email Delivered',
  'Email Opened',
  'Push Notification Sent',
  'Subscription Renewed',
];

// The collector removes U+0000 from every text it lands (SQL texts cannot hold it): compared the same way,
// 'qa-bot\u0000' is the internal user it lands as, and 'Email Opened\u0000' the listed event.
function withoutNul(text) {
  return text.split('\u0000').join('');
}

function normalise(value) {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' ? withoutNul(value).trim().toLowerCase() : '';
}

const internalIds = new Set(INTERNAL_USER_IDS.map(normalise));
const internalDomains = INTERNAL_EMAIL_DOMAINS.map(normalise);
const nonActivity = new Set(NON_ACTIVITY_EVENTS);

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function emailOf(event) {
  const contextTraits = isObject(event.context) && isObject(event.context.traits) ? event.context.traits : {};
  // a group's traits describe the group, not the user
  const own = event.type !== 'group' && isObject(event.traits) ? event.traits : {};
  // The email that lands: top-level traits are merged over context.traits, so a top-level key wins even
  // when empty or null (`"email": ""` lands as ""), and context.traits' email counts only without one.
  const email = Object.prototype.hasOwnProperty.call(own, 'email') ? own.email : contextTraits.email;
  return normalise(email);
}

function isInternal(event) {
  for (const id of [event.userId, event.anonymousId, event.previousId]) {
    if (internalIds.has(normalise(id))) return true;
  }
  const email = emailOf(event);
  const at = email.lastIndexOf('@');
  if (at < 0) return false;
  const domain = email.slice(at + 1);
  return internalDomains.some((d) => domain === d || domain.endsWith('.' + d));
}

// The sync always sends `context.cdp_lifecycle` as an object ({ version, run_id }); a null one is not set
// (`typeof null` is 'object'), so such an identify is the customer's and lands.
function isSyncedTrait(event) {
  return event.type === 'identify' && isObject(event.context) && isObject(event.context.cdp_lifecycle);
}

export function transformEvent(event, metadata) {
  if (!event || isInternal(event) || isSyncedTrait(event)) return; // returning nothing drops the event
  // properties that are not an object (a string, an array) stay as sent: the collector refuses such an event
  // and keeps it in rejected_events, where a merge would make it valid with junk keys ("0", "1", …)
  const props = event.properties;
  const mergeable =
    props === undefined || props === null || (typeof props === 'object' && !Array.isArray(props));
  const name = typeof event.event === 'string' ? withoutNul(event.event) : event.event;
  if (event.type === 'track' && nonActivity.has(name) && mergeable) {
    event.properties = Object.assign({}, props, {
      non_activity: true,
      non_activity_reason: 'listed in NON_ACTIVITY_EVENTS',
    });
  }
  return event;
}
