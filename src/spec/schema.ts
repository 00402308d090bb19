import { z } from 'zod';
import type { ServiceDefinition } from '../catalog/types.js';

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

function serviceSchema(def: ServiceDefinition) {
  const configFiles = Object.fromEntries(def.configFiles.map((f) => [f, iniFile.optional()]));
  const shape = {
    enabled: z.boolean().default(def.enabledByDefault).describe(`Deploy ${def.name}`),
    config: z
      .strictObject(configFiles)
      .prefault({})
      .describe(
        `Overrides merged over podstack's generated config (files: ${def.configFiles.join(', ') || 'none'})`,
      ),
    ...(def.defaultPort === undefined
      ? {}
      : { port: port.default(def.defaultPort).describe('Port the public API is published on') }),
  };
  return z.strictObject(shape).prefault({}).describe(def.description);
}

const hostname = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/, 'must be an IP address or a host name');

const url = z.string().regex(/^(https?|file):\/\/\S+$/, 'must be a URL such as http://host/debian');

export function buildCloudSchema(catalog: readonly ServiceDefinition[]) {
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
      for (const def of catalog) {
        const settings = cloud.services[def.name] as { enabled: boolean } | undefined;
        if (!settings?.enabled) continue;
        for (const req of def.requires) {
          const dep = cloud.services[req] as { enabled: boolean } | undefined;
          if (!dep?.enabled) {
            ctx.addIssue({
              code: 'custom',
              path: ['services', req, 'enabled'],
              message: `${def.name} needs ${req}: set services.${req}.enabled to true, or disable ${def.name}`,
            });
          }
        }
      }
    });
}

export type IniValue = z.infer<typeof iniValue>;

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
  readonly endpoints: { readonly address: string; readonly bind: string };
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
