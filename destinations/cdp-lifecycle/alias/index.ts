import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, messageId, batchingFields, timeFields, userId } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Alias Calls',
  description: 'Lands alias calls in the `aliases` table (previous_id merged into user_id).',
  defaultSubscription: 'type = "alias"',
  fields: {
    messageId,
    previousId: {
      label: 'Previous ID',
      description: 'The previous ID of the user (usually the anonymous ID) that is merged into the user ID.',
      type: 'string',
      required: true,
      default: { '@path': '$.previousId' },
    },
    userId: { ...userId, required: true, allowNull: false },
    context,
    ...timeFields,
    ...batchingFields,
  },
  perform: (_request, { settings, payload }) => landPayloads('alias', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('alias', settings, payload, true),
};

export default action;
