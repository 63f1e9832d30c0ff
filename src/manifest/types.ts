/** The shape of `manifest.json`; `manifest.schema.json` is its JSON Schema (checked by a test). */
export const MANIFEST_VERSION = 1;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ManifestField {
  label: string;
  type: string;
  description: string;
  required: boolean;
  multiple?: boolean;
  default?: JsonValue;
}

export interface ManifestModel {
  name: string;
  /** staging, intermediate or marts (the folder). */
  layer: string;
  file: string;
  materialized: string;
  unique_key?: string | string[];
  description: string;
  depends_on: string[];
  columns: Array<{ name: string; description: string; tests: string[] }>;
}

export interface ManifestVar {
  name: string;
  default: JsonValue;
  description: string;
}

export interface ManifestTrait {
  name: string;
  column: string;
  type: 'string' | 'date' | 'integer' | 'number' | 'boolean';
  nullable: boolean;
  description: string;
  values?: Array<{ value: string; description?: string }>;
}

export interface Manifest {
  $schema: string;
  manifestVersion: number;
  name: string;
  version: string;
  description: string;
  license: string;
  cli: {
    bin: string;
    commands: Array<{ name: string; summary: string; args?: string; flags: string[] }>;
    exitCodes: Record<string, string>;
  };
  configuration: {
    file: string;
    precedence: string[];
    settings: Array<{
      key: string;
      type: string;
      description: string;
      flag?: string;
      env?: string;
      default?: JsonValue;
      choices?: string[];
      commands: string[];
      secret?: boolean;
    }>;
    fileSchema: Record<string, unknown>;
  };
  destination: {
    name: string;
    slug: string;
    mode: string;
    description: string;
    path: string;
    settings: Record<string, ManifestField>;
    actions: Array<{
      key: string;
      title: string;
      description: string;
      defaultSubscription: string;
      fields: Record<string, ManifestField>;
    }>;
    presets: Array<{ name: string; partnerAction: string; subscribe: string }>;
  };
  collector: {
    command: string;
    endpoints: Array<{ method: 'GET' | 'POST'; path: string; description: string }>;
    auth: string;
    limits: { maxRequestBytes: number; maxEventBytes: number; maxBatchEvents: number };
    rawTables: Array<{ name: string; columns: Array<{ name: string; type: string }> }>;
  };
  warehouses: Array<{ type: string; run: boolean; compile: boolean; url?: string }>;
  models: {
    package: string;
    path: string;
    defaultSchema: string;
    rawSchema: string;
    models: ManifestModel[];
  };
  vars: ManifestVar[];
  sync: {
    targets: Array<{
      target: string;
      defaultEndpoint?: string;
      euEndpoint?: string;
      limits: { maxEventBytes: number; maxBatchBytes: number; maxBatchEvents: number };
    }>;
    call: 'identify';
    traits: ManifestTrait[];
    stateTables: string[];
  };
}
