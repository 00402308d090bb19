import type { IniOverrides } from '../config/ini.js';
import type { Unit } from '../plan/unit.js';
import type { CloudSpec } from '../spec/schema.js';

/**
 * An image podstack builds. Its Containerfile and scripts live in images/<name>/,
 * Kolla-style; the Containerfile starts with `ARG PARENT` / `FROM ${PARENT}`.
 */
export interface ImageRecipe {
  readonly name: string;
  /** Another recipe's name, or 'rootfs' for the debootstrapped Debian root. */
  readonly parent: string;
}

/** What a service's render function is given: everything already resolved and validated. */
export interface RenderContext {
  readonly spec: CloudSpec;
  /** Values from secrets.yaml. Only ever placed into Secret objects. */
  readonly secrets: Readonly<Record<string, string>>;
  /** The full reference (name:tag) of one of podstack's images. */
  image(name: string): string;
  /** The user's overrides for one of this service's config files (empty when none). */
  overrides(file: string): IniOverrides;
}

/**
 * One OpenStack project or piece of infrastructure. Adding a service to podstack
 * means adding one file that exports one of these and listing it in catalog/index.ts.
 */
export interface ServiceDefinition {
  /** The key under `services:` in cloud.yaml. */
  readonly name: string;
  readonly description: string;
  readonly kind: 'infrastructure' | 'openstack';
  readonly enabledByDefault: boolean;
  /** Services that must be enabled for this one to work. */
  readonly requires: readonly string[];
  /** Names of the entries it needs in secrets.yaml (generated once by podstack). */
  readonly secrets: readonly string[];
  readonly images: readonly ImageRecipe[];
  /** Config files a user may override under services.<name>.config, in oslo INI form. */
  readonly configFiles: readonly string[];
  /** The port its public API is published on, when it has one. */
  readonly defaultPort?: number;
  readonly render: (ctx: RenderContext) => readonly Unit[];
}
