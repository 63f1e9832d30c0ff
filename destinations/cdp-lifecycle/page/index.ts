import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, name, properties, batchingFields, timeFields } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Page Calls',
  description: 'Lands page calls in the `pages` table.',
  defaultSubscription: 'type = "page"',
  fields: { ...identityFields, name, properties, context, ...timeFields, ...batchingFields },
  perform: (_request, { settings, payload }) => landPayloads('page', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('page', settings, payload, true),
};

export default action;
