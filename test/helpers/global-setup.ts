import { Client } from 'pg';
import { PG_ADMIN_URL } from './pg-url';

/**
 * Decides once per jest run whether the PostgreSQL tests run. In CI (CI=true) an unreachable server is a
 * failure, never a silent skip; elsewhere the tests skip with a message saying why.
 */
export default async function globalSetup(): Promise<void> {
  const client = new Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    process.env.CDP_LIFECYCLE_PG_AVAILABLE = '1';
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (process.env.CI === 'true') {
      throw new Error(
        `PostgreSQL at ${PG_ADMIN_URL} is unreachable (${reason}); CI requires it for the PostgreSQL tests.`,
      );
    }
    process.env.CDP_LIFECYCLE_PG_AVAILABLE = '0';
    console.warn(
      `\n[cdp-lifecycle] PostgreSQL at ${PG_ADMIN_URL} is unreachable (${reason}): PostgreSQL tests are SKIPPED.\n`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
