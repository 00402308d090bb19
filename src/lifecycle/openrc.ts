import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { readFileOrUndefined, writeFileAtomic } from '../_fs.js';
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
  const authUrl = project.endpoints.url('identity', 'public');
  const password = secrets.keystone_admin_password!;
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const openrc = join(dir, 'admin-openrc.sh');
  await writeFileAtomic(
    openrc,
    [
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
    ].join('\n'),
    0o600,
  );
  const cloudsYaml = join(dir, 'clouds.yaml');
  const existing = (parse((await readFileOrUndefined(cloudsYaml)) ?? '') ?? {}) as {
    clouds?: Record<string, unknown>;
  };
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
  await writeFileAtomic(cloudsYaml, stringify(clouds), 0o600);
  return { openrc, cloudsYaml, cloudName: spec.name };
}
