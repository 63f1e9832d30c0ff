import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, properties, batchingFields, timeFields } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Track Calls',
  description:
    'Lands track calls in the `tracks` table (event slug and name as sent, properties and context as JSON).',
  defaultSubscription: 'type = "track"',
  fields: {
    ...identityFields,
    event: {
      label: 'Event Name',
      description: 'The name of the event as sent; its snake_case slug fills the `event` column.',
      type: 'string',
      required: true,
      default: { '@path': '$.event' },
    },
    properties,
    context,
    ...timeFields,
    ...batchingFields,
  },
  perform: (_request, { settings, payload }) => landPayloads('track', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('track', settings, payload, true),
};

export default action;
