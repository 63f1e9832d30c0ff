import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, batchingFields, timeFields, traits } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Identify Calls',
  description:
    'Lands identify calls in the `identifies` table, with top-level traits merged over context.traits.',
  defaultSubscription: 'type = "identify"',
  fields: { ...identityFields, traits, context, ...timeFields, ...batchingFields },
  perform: (_request, { settings, payload }) => landPayloads('identify', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('identify', settings, payload, true),
};

export default action;
