/**
 * The demo's mark on its schemas, and the refusal to land real events where it is: shared by the CLI (`serve`,
 * `load`) and the Action Destination, which must not load the demo's generator or the CLI to check it.
 */
import { UserError } from '../errors';
import type { Warehouse } from '../warehouse/types';

/** Marks a model schema as the demo's: a re-run may recreate it, and a real sync refuses it. */
export const DEMO_MARKER_TABLE = 'cdp_lifecycle_demo';

/**
 * Refuses to land real events where the demo's are: they would mix with generated users, and the next
 * `cdp-lifecycle demo` resets its schemas, dropping them. `schemas`: the raw schema events would land in, and
 * any schema they would be built into; `example`: another warehouse, in the caller's terms.
 */
export async function refuseDemoSchemas(wh: Warehouse, schemas: string[], example: string): Promise<void> {
  for (const schema of schemas) {
    if (await wh.tableExists(schema, DEMO_MARKER_TABLE)) {
      throw new UserError(
        `The warehouse ${wh.displayUrl} holds the demo (cdp-lifecycle demo made schema ${schema}), which the next demo resets: ` +
          `land your events in a warehouse of their own, e.g. ${example}.`,
      );
    }
  }
}
