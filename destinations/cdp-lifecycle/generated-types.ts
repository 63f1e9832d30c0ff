// Generated file. DO NOT MODIFY IT BY HAND.

export interface Settings {
  /**
   * Where the events land: duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db.
   */
  warehouseUrl: string;
  /**
   * The schema of the landing tables (created if missing).
   */
  rawSchema?: string;
}
