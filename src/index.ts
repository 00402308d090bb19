/**
 * podstack as a library: what the CLI does, callable from code and tests. The CLI
 * (src/cli/main.ts) is a thin shell over these.
 */

export { openstackService } from './catalog/_factory.js';
export { catalog } from './catalog/index.js';
export type { EndpointRegistry, Interface } from './catalog/registry.js';
export type { Capability, ImageRecipe, RenderContext, ServiceDefinition } from './catalog/types.js';
export { defineService } from './catalog/types.js';
export type { ApplyResult, Engine, UnitStatus } from './engines/types.js';
export { BuildError, HostError, PodstackError, SpecError, UnitFailedError } from './errors.js';
export type { ProgressEvent, Reporter } from './events.js';
export { buildProject, pushProject } from './lifecycle/build.js';
export { type Endpoint, publishedEndpoints } from './lifecycle/endpoints.js';
export { type EngineChoice, engineFor } from './lifecycle/engine.js';
export { writeOpenrc } from './lifecycle/openrc.js';
export {
  type EngineName,
  initProject,
  openProject,
  type Project,
  type ProjectOptions,
} from './lifecycle/project.js';
export { type UpOptions, type UpResult, up } from './lifecycle/up.js';
export type { Plan, PlannedUnit, Unit, UnitChange } from './model/unit.js';
export { buildPlan, type PlanTarget } from './plan/build.js';
export { planToDot, planToText, planToYaml } from './plan/render.js';
export { loadCloud, parseCloud } from './spec/load.js';
export type { CloudSpec } from './spec/schema.js';
