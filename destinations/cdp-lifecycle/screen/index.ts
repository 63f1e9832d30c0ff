import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, name, properties, batchingFields, timeFields } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Screen Calls',
  description: 'Lands screen calls in the `screens` table.',
  defaultSubscription: 'type = "screen"',
  fields: { ...identityFields, name, properties, context, ...timeFields, ...batchingFields },
  perform: (_request, { settings, payload }) => landPayloads('screen', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('screen', settings, payload, true),
};

export default action;
