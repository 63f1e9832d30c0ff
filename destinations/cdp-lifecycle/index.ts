import { defaultValues, InvalidAuthenticationError, type DestinationDefinition } from '@segment/actions-core';
import type { Settings } from './generated-types';
import { checkWarehouse, DEFAULT_RAW_SCHEMA } from './client';
import track from './track';
import identify from './identify';
import page from './page';
import screen from './screen';
import alias from './alias';
import group from './group';
import { UserError, WarehouseUnavailableError, errorMessage } from '../../src/errors';

const destination: DestinationDefinition<Settings> = {
  // actions-core uses the name as the scheme of its ajv schema keys, so it must be URI-scheme safe.
  name: 'cdp-lifecycle',
  slug: 'actions-cdp-lifecycle',
  mode: 'cloud',
  description:
    'Lands track, identify, page, screen, alias and group calls in raw tables of your warehouse (DuckDB or PostgreSQL), where the cdp-lifecycle models compute lifecycle status, RFM and growth accounting.',

  authentication: {
    scheme: 'custom',
    fields: {
      warehouseUrl: {
        label: 'Warehouse URL',
        description:
          'Where the events land: duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db.',
        // it may carry the database password: Segment masks a password setting in its UI and logs
        type: 'password',
        required: true,
      },
      rawSchema: {
        label: 'Raw Schema',
        description: 'The schema of the landing tables (created if missing).',
        type: 'string',
        default: DEFAULT_RAW_SCHEMA,
      },
    },
    testAuthentication: async (_request, { settings }) => {
      try {
        await checkWarehouse(settings);
      } catch (err) {
        // a setting that can never work (a raw schema the CLI refuses, a file that is not a DuckDB database)
        // is said as it is: the warehouse was reached
        if (err instanceof UserError && !(err instanceof WarehouseUnavailableError)) {
          throw new InvalidAuthenticationError(err.message);
        }
        throw new InvalidAuthenticationError(`The warehouse cannot be reached: ${errorMessage(err)}`);
      }
    },
  },

  presets: [
    {
      name: 'Track Calls',
      subscribe: 'type = "track"',
      partnerAction: 'track',
      mapping: defaultValues(track.fields),
      type: 'automatic',
    },
    {
      name: 'Identify Calls',
      subscribe: 'type = "identify"',
      partnerAction: 'identify',
      mapping: defaultValues(identify.fields),
      type: 'automatic',
    },
    {
      name: 'Page Calls',
      subscribe: 'type = "page"',
      partnerAction: 'page',
      mapping: defaultValues(page.fields),
      type: 'automatic',
    },
    {
      name: 'Screen Calls',
      subscribe: 'type = "screen"',
      partnerAction: 'screen',
      mapping: defaultValues(screen.fields),
      type: 'automatic',
    },
    {
      name: 'Alias Calls',
      subscribe: 'type = "alias"',
      partnerAction: 'alias',
      mapping: defaultValues(alias.fields),
      type: 'automatic',
    },
    {
      name: 'Group Calls',
      subscribe: 'type = "group"',
      partnerAction: 'group',
      mapping: defaultValues(group.fields),
      type: 'automatic',
    },
  ],

  actions: { track, identify, page, screen, alias, group },
};

export default destination;
