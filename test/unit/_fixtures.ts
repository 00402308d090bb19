import { allSecretNames, catalog } from '../../src/catalog/index.js';
import { imagesFor } from '../../src/images/recipes.js';
import { type EngineName, planTarget } from '../../src/lifecycle/project.js';
import { hashOf } from '../../src/model/hash.js';
import { buildPlan, enabledServices } from '../../src/plan/build.js';
import { parseCloud } from '../../src/spec/load.js';

/**
 * Fixed inputs for plans made in tests. Secrets and image names come from the catalog, so a
 * service added there is in every test's plan; the values are fixed and recognisable.
 */
export const SECRETS: Readonly<Record<string, string>> = Object.fromEntries(
  // By name, not by position: a service added to the catalog changes no other entry's value.
  allSecretNames(catalog).map((name) => [
    name,
    `${name.replace(/_/g, '-')}-SECRET-${hashOf(name).slice(0, 6)}`,
  ]),
);

export const IMAGE_REFS: Readonly<Record<string, string>> = Object.fromEntries(
  imagesFor(catalog)
    .flat()
    .map((r) => [r.name, `localhost/t/${r.name}:1`]),
);

/** The plan of a cloud file, with fixed secrets and image tags, for an engine (default podman). */
export function planOf(cloudYaml = '', engine: EngineName = 'podman') {
  const spec = parseCloud(cloudYaml, 'cloud.yaml', catalog);
  return buildPlan({
    spec,
    secrets: SECRETS,
    catalog,
    imageRefs: IMAGE_REFS,
    target: planTarget(spec, engine),
  });
}

/** The services a cloud file enables, in catalog order. */
export const servicesOf = (cloudYaml = '') =>
  enabledServices(parseCloud(cloudYaml, 'cloud.yaml', catalog), catalog);
