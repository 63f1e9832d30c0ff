/** The server every machine (and CI) runs; override with LIFECYCLE_TEST_PG_URL. */
export const PG_ADMIN_URL = process.env.LIFECYCLE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
