import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../_fs.js';
import { packageRoot } from '../_paths.js';
import { allSecretNames, catalog as defaultCatalog, type ServiceDefinition } from '../catalog/index.js';
import type { EndpointRegistry } from '../catalog/registry.js';
import type { ImageRecipe } from '../catalog/types.js';
import { cloudSubnet, gatewayOf } from '../engines/podman/network.js';
import { type Reporter, silent } from '../events.js';
import { imageRefs, imagesFor, type RootfsInputs } from '../images/recipes.js';
import { debianSourcesFor, readHostSources } from '../images/sources.js';
import type { Plan } from '../model/unit.js';
import { buildPlan, enabledServices, endpointRegistry, type PlanTarget } from '../plan/build.js';
import { fileError, readInputFile } from '../spec/files.js';
import { loadCloud, parseCloud } from '../spec/load.js';
import type { CloudSpec } from '../spec/schema.js';
import { ensureSecrets, readSecrets } from '../spec/secrets.js';
import { cloudTemplate } from '../spec/template.js';

export type EngineName = 'podman' | 'kubernetes';

export interface ProjectOptions {
  /** The engine the plan is made for (default podman). */
  readonly engine?: EngineName;
  /** Path of the cloud file (default ./cloud.yaml). */
  readonly file?: string;
  /** Path of the secrets file (default: secrets.yaml beside the cloud file). */
  readonly secretsFile?: string;
  readonly catalog?: readonly ServiceDefinition[];
  /** The image recipes, one folder per image (default: the package's images/). */
  readonly imagesDir?: string;
  readonly report?: Reporter;
}

/** Everything a command needs, derived from the cloud file and secrets: spec -> images -> plan. */
export interface Project {
  readonly file: string;
  readonly secretsFile: string;
  readonly spec: CloudSpec;
  readonly secrets: Readonly<Record<string, string>>;
  /**
   * Secrets that are not in secretsFile (or all, when there is none): their values were
   * generated in memory for this command only, and are written by `init` and `up` alone.
   */
  readonly generatedSecrets: readonly string[];
  readonly services: readonly ServiceDefinition[];
  readonly imageWaves: readonly (readonly ImageRecipe[])[];
  readonly imageRefs: Readonly<Record<string, string>>;
  readonly rootfs: RootfsInputs;
  readonly imagesDir: string;
  readonly plan: Plan;
  readonly engine: EngineName;
  /** Where each API is published: what `up` and `status` show, what openrc points at. */
  readonly endpoints: EndpointRegistry;
  /** podstack's state for this cloud. */
  readonly stateDir: string;
}

export function projectPaths(o: ProjectOptions): { file: string; secretsFile: string } {
  const file = resolve(o.file ?? 'cloud.yaml');
  return { file, secretsFile: resolve(o.secretsFile ?? join(dirname(file), 'secrets.yaml')) };
}

export interface InitResult {
  readonly file: string;
  readonly secretsFile: string;
  readonly wroteCloudFile: boolean;
  readonly addedSecrets: readonly string[];
}

/**
 * Writes the commented cloud file if there is none, and generates missing secrets. Never
 * overwrites. An existing cloud file is validated first, so that invalid input changes nothing.
 */
export async function initProject(o: ProjectOptions = {}): Promise<InitResult> {
  const catalog = o.catalog ?? defaultCatalog;
  const { file, secretsFile } = projectPaths(o);
  const existing = await readInputFile(file);
  if (existing !== undefined) parseCloud(existing.text, file, catalog);
  // And the secrets file, before the cloud file is written: a bad one must leave no new file.
  await readSecrets(secretsFile, []);
  const wroteCloudFile = existing === undefined;
  if (wroteCloudFile) {
    try {
      await writeFileAtomic(file, cloudTemplate(catalog), 0o644);
    } catch (err) {
      throw fileError(file, err, 'write');
    }
  }
  const { added } = await ensureSecrets(secretsFile, allSecretNames(catalog));
  return { file, secretsFile, wroteCloudFile, addedSecrets: added };
}

/**
 * Everything a command needs, from the cloud file and the secrets. Writes nothing: secrets
 * missing from secrets.yaml are generated in memory (see Project.generatedSecrets); only
 * `init` and `up` write them.
 */
export async function openProject(o: ProjectOptions = {}): Promise<Project> {
  const report = o.report ?? silent;
  const catalog = o.catalog ?? defaultCatalog;
  const { file, secretsFile } = projectPaths(o);
  const spec = await loadCloud(file, catalog);
  const secretsResult = await readSecrets(secretsFile, allSecretNames(catalog));
  if (secretsResult.loose)
    report({
      type: 'warning',
      message: `${secretsFile} is readable by others: \`chmod 600\` it (\`podstack up\` does)`,
    });
  const services = enabledServices(spec, catalog);
  const debian = debianSourcesFor(spec.images.debian.suite, await readHostSources(), {
    ...(spec.images.debian.mirror ? { mirror: spec.images.debian.mirror } : {}),
    ...(spec.images.debian.securityMirror ? { securityMirror: spec.images.debian.securityMirror } : {}),
  });
  const rootfs: RootfsInputs = {
    suite: spec.images.debian.suite,
    mirror: debian.mirror,
    extraContext: { base: { 'debian.sources': debian.sourcesFile } },
  };
  const imagesDir = o.imagesDir ?? join(packageRoot(), 'images');
  const imageWaves = imagesFor(services);
  const refs = await imageRefs(imageWaves, spec.images.prefix, imagesDir, rootfs);
  const engine = o.engine ?? 'podman';
  const target = planTarget(spec, engine);
  const plan = buildPlan({ spec, secrets: secretsResult.secrets, catalog, imageRefs: refs, target });
  return {
    file,
    secretsFile,
    spec,
    secrets: secretsResult.secrets,
    generatedSecrets: secretsResult.added,
    services,
    imageWaves,
    imageRefs: refs,
    rootfs,
    imagesDir,
    plan,
    engine,
    endpoints: endpointRegistry(spec, services, target.internalAddress),
    stateDir: join(spec.dataDir, spec.name),
  };
}

/**
 * What the engine asks of the plan. Internal endpoints need an address that the host and the
 * cloud's pods both reach: on Podman the gateway of the cloud's own network, on Kubernetes the
 * node address clients use (pods reach the published Services there too).
 */
export function planTarget(spec: CloudSpec, engine: EngineName): PlanTarget {
  if (engine === 'kubernetes')
    return {
      internalAddress: spec.endpoints.internal || spec.endpoints.address,
      inClusterWaits: true,
      manyNodes: spec.network.tunnels,
      nodeHostPaths: true,
      // Kubernetes only: on Podman a claim is a named volume, and the setting would only change hashes.
      ...(spec.kubernetes.storageClass ? { storageClass: spec.kubernetes.storageClass } : {}),
    };
  return {
    internalAddress: spec.endpoints.internal || gatewayOf(cloudSubnet(spec.name, spec.network.subnet)),
    inClusterWaits: false,
    manyNodes: false,
    nodeHostPaths: false,
  };
}
