import { z } from 'zod';
import type { IniValue } from '../config/ini.js';

/**
 * The cloud file's schema, built from the catalog so that each service's
 * settings (its config files, its port) are checked by the same source of truth
 * that renders it. Every object is strict: a typo must never be silently ignored.
 * The editor JSON Schema (schema/cloud.schema.json) is generated from this too.
 */

const iniValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]);

/** file -> section -> option -> value, e.g. keystone.conf -> DEFAULT -> debug -> true. */
const iniFile = z
  .record(z.string().min(1), z.record(z.string().min(1), iniValue))
  .describe('Sections of an oslo-style INI file, each a map of option -> value');

const port = z.number().int().min(1).max(65535);

/**
 * What the schema needs to know of a service. The catalog's entries are these and more; the
 * spec layer knows nothing else of the catalog.
 */
export interface ServiceOptions {
  readonly name: string;
  readonly description: string;
  readonly enabledByDefault: boolean;
  readonly configFiles: readonly string[];
  /** Its API's port, when it has one: the default of services.<name>.port. */
  readonly api?: { readonly port: number };
  /** Capabilities it uses, and those it offers the others (database, identity...). */
  readonly needs: readonly string[];
  readonly provides: Readonly<Record<string, unknown>>;
}

function serviceSchema(def: ServiceOptions) {
  const configFiles = Object.fromEntries(def.configFiles.map((f) => [f, iniFile.optional()]));
  const shape = {
    enabled: z.boolean().default(def.enabledByDefault).describe(`Deploy ${def.name}`),
    config: z
      .strictObject(configFiles)
      .prefault({})
      .describe(
        `Overrides merged over podstack's generated config (files: ${def.configFiles.join(', ') || 'none'})`,
      ),
    ...(def.api === undefined
      ? {}
      : { port: port.default(def.api.port).describe('Port the API is published on') }),
  };
  return z.strictObject(shape).prefault({}).describe(def.description);
}

const hostname = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/, 'must be an IP address or a host name');

const subnet = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/(1[6-9]|2[0-8])$/,
    'must be an IPv4 subnet from /16 to /28, such as 10.89.7.0/24',
  );

const url = z.string().regex(/^(https?|file):\/\/\S+$/, 'must be a URL such as http://host/debian');

export function buildCloudSchema(catalog: readonly ServiceOptions[]) {
  const services = Object.fromEntries(catalog.map((s) => [s.name, serviceSchema(s)]));
  return z
    .strictObject({
      name: z
        .string()
        .regex(
          /^[a-z][a-z0-9-]{0,23}$/,
          'must start with a letter and use only a-z, 0-9 and -, at most 24 characters',
        )
        .default('podstack')
        .describe('Names the cloud: containers, volumes and networks are prefixed with it'),
      release: z.enum(['zed']).default('zed').describe('OpenStack release (Debian 12 ships Zed)'),
      region: z.string().min(1).default('RegionOne').describe('Keystone region for every endpoint'),
      endpoints: z
        .strictObject({
          address: hostname
            .default('127.0.0.1')
            .describe('Address clients use to reach the APIs; public endpoints are registered with it'),
          bind: z
            .union([z.literal(''), hostname])
            .default('')
            .describe('Host address the API ports are published on (empty: the same as address)'),
          internal: z
            .union([z.literal(''), hostname])
            .default('')
            .describe(
              "Address of the internal and admin endpoints, which both the cloud's services and tools on the host reach (empty: on Podman the cloud network's gateway, on Kubernetes the same as address)",
            ),
        })
        .prefault({}),
      network: z
        .strictObject({
          subnet: z
            .union([z.literal(''), subnet])
            .default('')
            .describe(
              "Podman: the cloud network's IPv4 subnet; the host's address on it (the first) carries the internal endpoints. Empty: 10.89.N.0/24, N derived from the cloud's name",
            ),
        })
        .prefault({}),
      images: z
        .strictObject({
          prefix: z
            .string()
            .regex(/^[a-z0-9.:/_-]+$/, 'must be an image name prefix such as localhost/podstack')
            .default('localhost/podstack')
            .describe(
              'Images are named <prefix>/<image>:<hash of its inputs>; for Kubernetes, a registry the cluster pulls from, as <registry host>:<port>/podstack',
            ),
          tlsVerify: z
            .boolean()
            .default(true)
            .describe('Verify TLS when pushing to the registry in prefix (false for a plain-http registry)'),
          debian: z
            .strictObject({
              suite: z
                .enum(['bookworm'])
                .default('bookworm')
                .describe('Debian release the images are built from'),
              mirror: url
                .optional()
                .describe("Debian mirror for the images (default: the one in this host's apt sources)"),
              securityMirror: url
                .optional()
                .describe("Debian security mirror (default: the one in this host's apt sources, if any)"),
            })
            .prefault({}),
        })
        .prefault({}),
      dataDir: z
        .string()
        .regex(/^\//, 'must be an absolute path')
        .default('/var/lib/podstack')
        .describe('Where podstack keeps state and rendered config (one folder per cloud)'),
      services: z.strictObject(services).prefault({}),
    })
    .superRefine((cloud, ctx) => {
      const enabled = (name: string) =>
        (cloud.services[name] as { enabled: boolean } | undefined)?.enabled === true;
      for (const def of catalog) {
        if (!enabled(def.name)) continue;
        for (const need of def.needs) {
          const providers = catalog.filter((p) => need in p.provides);
          if (providers.some((p) => enabled(p.name))) continue;
          const first = providers[0]?.name ?? need;
          ctx.addIssue({
            code: 'custom',
            path: ['services', first, 'enabled'],
            message: `${def.name} needs ${need}, which ${first} provides: set services.${first}.enabled to true, or disable ${def.name}`,
          });
        }
      }
    });
}

export interface ServiceSettings {
  readonly enabled: boolean;
  readonly port?: number;
  readonly config: Readonly<
    Record<string, Readonly<Record<string, Readonly<Record<string, IniValue>>>> | undefined>
  >;
}

export interface CloudSpec {
  readonly name: string;
  readonly release: 'zed';
  readonly region: string;
  readonly endpoints: { readonly address: string; readonly bind: string; readonly internal: string };
  readonly network: { readonly subnet: string };
  readonly images: {
    readonly prefix: string;
    readonly tlsVerify: boolean;
    readonly debian: {
      readonly suite: 'bookworm';
      readonly mirror?: string;
      readonly securityMirror?: string;
    };
  };
  readonly dataDir: string;
  readonly services: Readonly<Record<string, ServiceSettings>>;
}
