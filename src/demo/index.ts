export * from './events';
export {
  DEMO_CORE_EVENTS,
  DEMO_DEFAULTS,
  DEMO_NON_ACTIVITY_EVENTS,
  PERSONA_MIX,
  demoPersonas,
  demoVars,
  generateDemoEvents,
  type DemoOptions,
  type Persona,
} from './generator';
export {
  readRetailSample,
  retailSampleEvents,
  type RetailOptions,
  type RetailSample,
  type RetailStats,
} from './retail';
