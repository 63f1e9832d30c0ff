import type { ActionDefinition } from '@segment/actions-core';
import type { Settings } from '../generated-types';
import type { Payload } from './generated-types';
import { context, identityFields, batchingFields, timeFields, traits } from '../fields';
import { landPayloads } from '../client';

const action: ActionDefinition<Settings, Payload> = {
  title: 'Land Group Calls',
  description: "Lands group calls in the `groups` table, with the group's own traits.",
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
    traits: {
      ...traits,
      description:
        "The group's traits, stored as JSON (context.traits describe the user, so they are not merged in).",
    },
    context,
    ...timeFields,
    ...batchingFields,
  },
  perform: (_request, { settings, payload }) => landPayloads('group', settings, [payload], false),
  performBatch: (_request, { settings, payload }) => landPayloads('group', settings, payload, true),
};

export default action;
