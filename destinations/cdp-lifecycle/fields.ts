/**
 * Fields shared by the actions. Each maps one part of a Segment/RudderStack spec event with a `@path`
 * default, so the action payload carries exactly what the landing row of SPEC §3 needs and nothing else
 * (fewer fields: less mapping work per event on the collector's hot path).
 */
import type { InputField } from '@segment/actions-core';

export const messageId: InputField = {
  label: 'Message ID',
  description:
    'The unique ID of the call; it becomes the `id` column that the models deduplicate on. A UUID is generated when the call has none.',
  type: 'string',
  default: { '@path': '$.messageId' },
};

export const userId: InputField = {
  label: 'User ID',
  description: 'The ID of the user in your systems.',
  type: 'string',
  allowNull: true,
  default: { '@path': '$.userId' },
};

export const anonymousId: InputField = {
  label: 'Anonymous ID',
  description: 'The device or browser ID of a user who is not identified yet.',
  type: 'string',
  allowNull: true,
  default: { '@path': '$.anonymousId' },
};

export const context: InputField = {
  label: 'Context',
  description: 'The context of the call (library, device, page, campaign, ip…), stored as JSON.',
  type: 'object',
  default: { '@path': '$.context' },
};

export const properties: InputField = {
  label: 'Properties',
  description: 'The properties of the call, stored as JSON.',
  type: 'object',
  default: { '@path': '$.properties' },
};

export const traits: InputField = {
  label: 'Traits',
  description:
    'Traits of the call; on identify calls they are merged over `context.traits` (top-level traits win). Stored as JSON.',
  type: 'object',
  default: { '@path': '$.traits' },
};

export const name: InputField = {
  label: 'Name',
  description: 'The name of the page or screen.',
  type: 'string',
  allowNull: true,
  default: { '@path': '$.name' },
};

export const timestamp: InputField = {
  label: 'Timestamp',
  description:
    'When the call happened. When empty it is derived as receivedAt - (sentAt - originalTimestamp), else receivedAt.',
  type: 'string',
  default: { '@path': '$.timestamp' },
};

export const originalTimestamp: InputField = {
  label: 'Original Timestamp',
  description: 'The device clock when the call happened.',
  type: 'string',
  default: { '@path': '$.originalTimestamp' },
};

export const sentAt: InputField = {
  label: 'Sent At',
  description: 'The device clock when the call was sent.',
  type: 'string',
  default: { '@path': '$.sentAt' },
};

export const receivedAt: InputField = {
  label: 'Received At',
  description: 'When the call was received (set by the collector).',
  type: 'string',
  default: { '@path': '$.receivedAt' },
};

/** Fields every call type carries, in the order they appear in the UI. */
export const identityFields = { messageId, userId, anonymousId };
export const timeFields = { timestamp, originalTimestamp, sentAt, receivedAt };

/**
 * Segment sends an action's events in batches (performBatch) only when its `enable_batching` field is on: one
 * warehouse transaction per batch instead of one per event. Hidden, as the reference destinations keep them.
 */
export const enable_batching: InputField = {
  label: 'Enable Batching',
  description: 'Land events in batches, one warehouse transaction per batch.',
  type: 'boolean',
  default: true,
  unsafe_hidden: true,
};

export const batch_size: InputField = {
  label: 'Batch Size',
  description: 'Maximum number of events to include in each batch. Actual batch sizes may be lower.',
  type: 'number',
  default: 1000,
  minimum: 1,
  maximum: 10000,
  unsafe_hidden: true,
};

export const batchingFields = { enable_batching, batch_size };
