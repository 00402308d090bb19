import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../_fs.js';
import { PodstackError, SpecError } from '../errors.js';
import { fileError, readInputFile } from '../spec/files.js';
import { parseYaml } from '../spec/load.js';
import type { Project } from './project.js';

export interface OpenrcResult {
  readonly openrc: string;
  readonly cloudsYaml: string;
  readonly cloudName: string;
}

/**
 * Admin credentials for the openstack CLI, as kolla-ansible's post-deploy
 * writes them: an openrc to source, and an entry in a clouds.yaml (merged
 * into an existing one). Both hold the admin password: mode 0600.
 */
export async function writeOpenrc(project: Project, dir = dirname(project.file)): Promise<OpenrcResult> {
  const { spec, secrets } = project;
  if (project.generatedSecrets.includes('keystone_admin_password')) {
    // A password made up for this command would let no one in: it must be the cloud's own.
    throw new PodstackError(`${project.secretsFile} has no keystone_admin_password`, {
      exitCode: 2,
      hint: '`podstack up` generates it when it deploys the cloud; or name the secrets file of a running cloud with --secrets.',
    });
  }
  const authUrl = project.endpoints.url('identity', 'public');
  const password = secrets.keystone_admin_password!;
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const openrc = join(dir, 'admin-openrc.sh');
  const openrcText = [
    `# Admin credentials for the podstack cloud "${spec.name}". Keep private.`,
    'for v in $(env | sed -n "s/^\\(OS_[A-Z_]*\\)=.*/\\1/p"); do unset "$v"; done',
    `export OS_AUTH_URL=${quote(authUrl)}`,
    'export OS_IDENTITY_API_VERSION=3',
    "export OS_USERNAME='admin'",
    `export OS_PASSWORD=${quote(password)}`,
    "export OS_PROJECT_NAME='admin'",
    "export OS_USER_DOMAIN_NAME='Default'",
    "export OS_PROJECT_DOMAIN_NAME='Default'",
    `export OS_REGION_NAME=${quote(spec.region)}`,
    "export OS_INTERFACE='public'",
    '',
  ].join('\n');
  const cloudsYaml = join(dir, 'clouds.yaml');
  const existing = await readCloudsYaml(cloudsYaml);
  const clouds = {
    ...existing,
    clouds: {
      ...(existing.clouds ?? {}),
      [spec.name]: {
        auth: {
          auth_url: authUrl,
          username: 'admin',
          password,
          project_name: 'admin',
          user_domain_name: 'Default',
          project_domain_name: 'Default',
        },
        region_name: spec.region,
        interface: 'public',
        identity_api_version: 3,
      },
    },
  };
  // Written once both are known to be writable content: a bad clouds.yaml changes neither file.
  for (const [path, text] of [
    [openrc, openrcText],
    [cloudsYaml, stringify(clouds)],
  ] as const) {
    try {
      await writeFileAtomic(path, text, 0o600);
    } catch (err) {
      throw fileError(path, err, 'write');
    }
  }
  return { openrc, cloudsYaml, cloudName: spec.name };
}

/** An existing clouds.yaml, to merge our entry into: a map whose `clouds` is a map. */
async function readCloudsYaml(file: string): Promise<{ clouds?: Record<string, unknown> }> {
  const input = await readInputFile(file);
  if (input === undefined) return {};
  const { data, locate } = parseYaml(input.text, file);
  const isMap = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isMap(data))
    throw new SpecError(file, [{ path: '', message: 'must be a map (clouds: ...)', line: 1 }]);
  if (data.clouds !== undefined && !isMap(data.clouds)) {
    const pos = locate(['clouds'], false);
    throw new SpecError(file, [
      {
        path: 'clouds',
        message: 'must be a map of cloud name -> settings',
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      },
    ]);
  }
  return data as { clouds?: Record<string, unknown> };
}
