import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { INI_SECTION, INI_VALUE, type IniOverrides, OPTION_NAME } from '../config/ini.js';
import { type PythonSettings, SETTING_NAME } from '../config/python.js';

/**
 * The cloud file's schema, built from the catalog so that each service's
 * settings (its config files, its port) are checked by the same source of truth
 * that renders it. Every object is strict: a typo must never be silently ignored.
 * The editor JSON Schema (schema/cloud.schema.json) is generated from this too.
 */

// Everything in a config override is written into a file verbatim: a line break or a bracket in
// the wrong place would inject lines of the user's into it, so each part is checked here, where
// the error can name the field, and not when the file is rendered.
const iniString = z
  .string()
  .regex(INI_VALUE, 'values may not contain line breaks or other control characters (tabs are fine)');
const iniValue = z.union([iniString, z.number(), z.boolean(), z.array(z.union([iniString, z.number()]))]);

const optionName = z
  .string()
  .regex(OPTION_NAME, 'option names may use only letters, digits, _, - and . (no spaces, = or :)');

/** file -> section -> option -> value, e.g. keystone.conf -> DEFAULT -> debug -> true. */
const iniFile = z
  .record(
    z
      .string()
      .regex(
        INI_SECTION,
        'section names may not be empty, contain [, ] or line breaks, or start or end with a space',
      ),
    z.record(optionName, iniValue),
  )
  .describe('Sections of an oslo-style INI file, each a map of option -> value');

/** Flat key = value files (rabbitmq.conf): a section is a key prefix, and '' holds keys without one. */
const keyValueFile = z
  .record(
    z
      .string()
      .regex(
        new RegExp(`^$|${OPTION_NAME.source}`),
        'sections of a key = value file are key prefixes: letters, digits, _, - and . only, or "" for none',
      ),
    z.record(optionName, iniValue),
  )
  .describe('Settings of a flat key = value file: key prefix ("" for none) -> key -> value');

/** Django settings (Horizon's local_settings.py): NAME -> any JSON value, written as a Python literal. */
const settingsFile = z
  .record(
    z.string().regex(SETTING_NAME, 'Django reads only upper-case setting names: letters A-Z, digits and _'),
    z.json(),
  )
  .describe("Django settings: NAME -> value (a dictionary is merged key by key over podstack's)");

const port = z.number().int().min(1).max(65535);

/**
 * The ports browsers refuse to open, whatever answers there (the Fetch standard's "bad ports";
 * Chromium says ERR_UNSAFE_PORT): a dashboard or console published on one could never be used.
 */
export const BROWSER_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104,
  109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515,
  526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049,
  3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

const browserPort = port.refine((p) => !BROWSER_BLOCKED_PORTS.has(p), {
  error: (i) =>
    `browsers refuse to open port ${String(i.input)} (one of the Fetch standard's blocked ports; Chromium says ERR_UNSAFE_PORT): choose another`,
});

/**
 * What the schema needs to know of a service. The catalog's entries are these and more; the
 * spec layer knows nothing else of the catalog.
 */
export interface ServiceOptions {
  readonly name: string;
  readonly description: string;
  readonly enabledByDefault: boolean;
  readonly configFiles: readonly string[];
  /** Those of configFiles that are flat key = value files rather than INI (rabbitmq.conf). */
  readonly keyValueFiles?: readonly string[];
  /** Those of configFiles that are Django settings modules (Horizon's local_settings.py). */
  readonly settingsFiles?: readonly string[];
  /** Its API's port, when it has one: the default of services.<name>.port. */
  readonly api?: { readonly port: number };
  /**
   * Other ports it publishes, which browsers open (the dashboard, the console proxy), by name: the
   * defaults of services.<name>.ports.
   */
  readonly ports?: Readonly<Record<string, number>>;
  /** Capabilities it uses, and those it offers the others (database, identity...). */
  readonly needs: readonly string[];
  readonly provides: Readonly<Record<string, unknown>>;
  /**
   * Settings of its own under services.<name>, beside enabled, config and port (Keystone's
   * keyRotation): each a zod schema with its default and description.
   */
  readonly fields?: z.ZodRawShape;
  /**
   * Problems that only the settings together show (an override that contradicts a setting),
   * each with its path under services.<name>.
   */
  readonly check?: (settings: ServiceSettings) => readonly { path: readonly string[]; message: string }[];
}

function serviceSchema(def: ServiceOptions) {
  const configFiles = Object.fromEntries(
    def.configFiles.map((f) => [
      f,
      (def.settingsFiles?.includes(f)
        ? settingsFile
        : def.keyValueFiles?.includes(f)
          ? keyValueFile
          : iniFile
      ).optional(),
    ]),
  );
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
    ...(def.ports === undefined
      ? {}
      : {
          ports: z
            .strictObject(
              Object.fromEntries(
                Object.entries(def.ports).map(([name, p]) => [
                  name,
                  browserPort.default(p).describe(`Port ${name} is published on (browsers open it)`),
                ]),
              ),
            )
            .prefault({})
            .describe('Other published ports'),
        }),
    ...def.fields,
  };
  return z.strictObject(shape).prefault({}).describe(def.description);
}

/** An IP literal as a URL and a published port take it: IPv4 (no leading zeros) or IPv6 (no zone). */
export function isIpAddress(s: string): boolean {
  return isIPv4(s) || (isIPv6(s) && !s.includes('%'));
}

const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * A DNS host name (RFC 1123). Its last label may not be a number: 256.1.1.1 or 10.1 are
 * mistyped IPv4 addresses, and URL parsers read such names as addresses, not names.
 */
export function isDnsHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  return labels.every((l) => DNS_LABEL.test(l)) && !/^(\d+|0x[0-9a-f]*)$/i.test(labels.at(-1)!);
}

const IP_FORMATS = [{ format: 'ipv4' }, { format: 'ipv6' }];

/** endpoints.address: what clients are told, so a name is fine. */
const hostAddress = z
  .string()
  .refine(
    (s) => isIpAddress(s) || isDnsHostname(s),
    'must be an IP address or a DNS host name, without a scheme or port (such as 192.0.2.10 or cloud.example.com)',
  )
  .meta({ anyOf: [...IP_FORMATS, { format: 'hostname' }] });

/** endpoints.bind and internal: ports are published on them, which takes an address, not a name. */
const ipOrEmpty = z
  .string()
  .refine(
    (s) => s === '' || isIpAddress(s),
    'must be an IP address (such as 192.0.2.10 or 2001:db8::10) without a port, or "" for the default',
  )
  .meta({ anyOf: [{ const: '' }, ...IP_FORMATS] });

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
          address: hostAddress
            .default('127.0.0.1')
            .describe('Address clients use to reach the APIs; public endpoints are registered with it'),
          bind: ipOrEmpty
            .default('')
            .describe('Host address the API ports are published on (empty: the same as address)'),
          internal: ipOrEmpty
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
          external: subnet
            .default('172.24.4.0/24')
            .describe(
              "The external (provider) network's subnet, where floating IPs come from. Its first address is the node's own, on the bridge podstack makes for it",
            ),
          tenant: subnet
            .default('10.0.0.0/24')
            .describe('The subnet of the tenant network podstack creates for a first server (`private`)'),
          tunnels: z
            .boolean()
            .default(true)
            .describe(
              "Kubernetes: Geneve between nodes' node pods, so that guests on different nodes share their networks and floating IPs are NATed on their guest's node. An Open vSwitch bridge (br-phy) shares the node pod's interface and address for Geneve alone; the pod's own traffic stays off it. Podman (one host): no effect. false: every node's guests are on their own",
            ),
          externalBridge: z
            .string()
            .regex(
              /^$|^[A-Za-z0-9_.-]{1,15}$/,
              'must be the name of a network interface (at most 15 characters)',
            )
            .default('')
            .describe(
              "A Linux bridge on every hypervisor node that carries a real external network (a physical NIC is its port): the node pod's br-ex gets a port on it, and floating IPs answer wherever that network reaches. The external subnet's first address is then that network's router, and its addresses from the 100th on are the cloud's. Kubernetes: the node pod reads the node's /proc to find the node's network namespace. Podman: this host's bridge, instead of the host link's address. Empty: the external network ends in the node pod (Podman: with the host link)",
            ),
          hostLink: z
            .boolean()
            .default(true)
            .describe(
              "Podman: give this host the external network's second address, on an interface podstack makes, so floating IPs answer ping and SSH here; it lets in replies only, and forwards nothing. false: floating IPs answer in the node pod only. With externalBridge the link has no address and is that bridge's port instead (the bridge's own address, if any, is the host's)",
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
          compression: z
            .enum(['zstd', 'gzip'])
            .default('zstd')
            .describe(
              'How layers are compressed when pushed to the registry: zstd packs and unpacks several times faster; gzip for a runtime older than containerd 1.5 or CRI-O 1.21',
            ),
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
      kubernetes: z
        .strictObject({
          storageClass: z
            .string()
            .regex(
              /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
              'must be the name of a StorageClass (lower-case letters, digits, - and .), or "" for the default',
            )
            .max(253)
            .default('')
            .describe(
              "Kubernetes: the StorageClass of the cloud's PersistentVolumeClaims (empty: the cluster's default StorageClass)",
            ),
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
      const { address, bind } = cloud.endpoints;
      if (bind === '' && isDnsHostname(address)) {
        // Ports are published on bind, which defaults to address: a name cannot be published on.
        ctx.addIssue({
          code: 'custom',
          path: ['endpoints', 'bind'],
          message: `endpoints.address is the host name ${address}, and API ports are published on an IP address: set bind to the address of this host that ${address} points to`,
        });
      }
      const enabled = (name: string) =>
        (cloud.services[name] as { enabled: boolean } | undefined)?.enabled === true;
      for (const def of catalog) {
        if (!enabled(def.name)) continue;
        const settings = cloud.services[def.name] as ServiceSettings;
        for (const issue of def.check?.(settings) ?? []) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', def.name, ...issue.path],
            message: issue.message,
          });
        }
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
  readonly ports?: Readonly<Record<string, number>>;
  /** An INI or key = value file's sections, or a settings file's settings (by the file's kind). */
  readonly config: Readonly<Record<string, IniOverrides | PythonSettings | undefined>>;
  /** The service's own settings (ServiceOptions.fields), as parsed. */
  readonly [field: string]: unknown;
}

export interface CloudSpec {
  readonly name: string;
  readonly release: 'zed';
  readonly region: string;
  readonly endpoints: { readonly address: string; readonly bind: string; readonly internal: string };
  readonly network: {
    readonly subnet: string;
    readonly external: string;
    readonly tenant: string;
    readonly tunnels: boolean;
    readonly externalBridge: string;
    readonly hostLink: boolean;
  };
  readonly images: {
    readonly prefix: string;
    readonly tlsVerify: boolean;
    readonly compression: 'zstd' | 'gzip';
    readonly debian: {
      readonly suite: 'bookworm';
      readonly mirror?: string;
      readonly securityMirror?: string;
    };
  };
  readonly kubernetes: { readonly storageClass: string };
  readonly dataDir: string;
  readonly services: Readonly<Record<string, ServiceSettings>>;
}
