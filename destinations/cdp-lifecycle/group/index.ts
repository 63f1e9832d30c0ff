import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, timeFields, traits } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Group Calls',
  description: 'Lands group calls in the `groups` table, with top-level traits merged over context.traits.',
  defaultSubscription: 'type = "group"',
  fields: {
    ...identityFields,
    groupId: {
      label: 'Group ID',
      description: 'The ID of the group (account, company, workspace) the user belongs to.',
      type: 'string',
      required: true,
      default: { '@path': '$.groupId' },
    },
    traits,
    context,
    ...timeFields,
  },
  perform: (_request, { settings, payload }) => landPayloads('group', settings, [payload]),
  performBatch: (_request, { settings, payload }) => landPayloads('group', settings, payload),
};

export default action;
