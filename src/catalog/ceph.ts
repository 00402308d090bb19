import { z } from 'zod';
import { cephxKey, type KeyringEntry, renderKeyring, uuidFrom } from '../config/ceph.js';
import { mergeIni, renderIni } from '../config/ini.js';
import {
  componentLabels,
  deployment,
  job,
  persistentVolumeClaim,
  secret,
  service,
  startContainer,
} from '../model/objects.js';
import type { Unit } from '../model/unit.js';
import { type ConfigFile, configBundle, configMount, podMounts, rootFile } from './_pod.js';
import { defineService, type RenderContext } from './types.js';

/**
 * Ceph (Pacific, from Debian) as the cloud's block storage: one monitor, one manager and one
 * OSD whose BlueStore is a file on a claim (no block device, loop device or kernel module), one
 * replica of everything. The warnings one replica implies are silenced in ceph.conf, each
 * deliberately (docs/design/block-storage.md, section 2.7); the rest fail the bootstrap Job.
 */

/**
 * The monitor's Service. Its address must never change (the monitor map holds it, and so do
 * librbd's sessions and the connection info Nova keeps for every attached volume), and a pod's
 * changes whenever the pod is made again: so the monitor is published on the cloud's internal
 * address, as the APIs are, and advertises that one (Podman publishes the ports there; on
 * Kubernetes it is the Service's external IP, which kube-proxy forwards, as Rook's monitors
 * advertise their Service's cluster IP).
 */
export const CEPH_MON = 'ceph-mon';
/** The pool Cinder's volumes live in. */
export const VOLUMES_POOL = 'volumes';

const OSD_SIZE = /^([1-9]\d{0,4})Gi$/;

/** The default caps of a client that uses RBD images in `pools` (doc/rbd/rbd-openstack.rst). */
export function rbdClient(entity: string, key: string, pools: readonly string[]): KeyringEntry {
  return {
    entity,
    key,
    caps: { mon: 'profile rbd', osd: pools.map((p) => `profile rbd pool=${p}`).join(', ') },
  };
}

/**
 * ceph.conf as a client needs it (Cinder, and QEMU through libvirt): the cluster's id and where
 * its monitor is. Its user lists `ceph_fsid` among its secrets.
 */
export function cephClientConf(ctx: RenderContext): string {
  return renderIni('ceph.conf', { global: clientGlobal(ctx) });
}

/** [global] as every client and daemon reads it: the cluster's id, its monitor, logs to stderr. */
function clientGlobal(ctx: RenderContext) {
  return {
    fsid: uuidFrom((ctx.secrets as Record<string, string>).ceph_fsid!, 'fsid'),
    // With no port, clients try msgr2 (3300), then msgr1 (6789).
    mon_host: ctx.endpoints.addresses.internal,
    auth_allow_insecure_global_id_reclaim: 'false',
    ms_bind_ipv6: 'false',
    log_to_file: 'false',
    log_to_stderr: 'true',
  };
}

/**
 * A Job that runs podstack-ceph-bootstrap as client.admin: it makes `pools`, imports the
 * clients of a `clients.keyring` among `files` if there is one, and waits for HEALTH_OK.
 */
function adminJob(
  ctx: RenderContext,
  o: { name: string; labels: Record<string, string>; files: readonly ConfigFile[]; pools: string },
) {
  const { volumes, volumeMounts } = podMounts([configMount(`${o.name}-config`)]);
  return [
    secret(`${o.name}-config`, o.labels, configBundle(o.files)),
    job(o.name, o.labels, {
      volumes,
      containers: [
        startContainer(o.name, ctx.image('ceph'), ['podstack-ceph-bootstrap'], {
          env: [{ name: 'PODSTACK_CEPH_POOLS', value: o.pools }],
          volumeMounts,
        }),
      ],
    }),
  ];
}

/**
 * A unit that gives Ceph a service's clients (their keys and capabilities): a Job that imports
 * them as client.admin, in the Ceph image. The service that uses a client owns it, so Ceph knows
 * no other service; its user lists `ceph_fsid` and `ceph_admin_key` among its secrets.
 */
export function cephClientsUnit(
  ctx: RenderContext,
  o: { service: string; clients: readonly KeyringEntry[]; dependsOn?: readonly string[] },
): Unit {
  const name = `${o.service}-ceph-clients`;
  const s = ctx.secrets as Record<string, string>;
  return {
    name,
    service: o.service,
    description: `Ceph clients ${o.clients.map((c) => c.entity).join(', ')}: their keys and capabilities`,
    dependsOn: [ctx.provider('ceph'), ...(o.dependsOn ?? [])],
    objects: adminJob(ctx, {
      name,
      labels: componentLabels(o.service, 'ceph-clients'),
      files: [
        rootFile('ceph.conf', '/etc/ceph/ceph.conf', cephClientConf(ctx)),
        rootFile(
          'admin.keyring',
          '/etc/ceph/ceph.client.admin.keyring',
          renderKeyring([{ entity: 'client.admin', key: cephxKey(s.ceph_admin_key!), caps: {} }]),
        ),
        rootFile('clients.keyring', '/etc/ceph/clients.keyring', renderKeyring(o.clients)),
      ],
      pools: '',
    }),
  };
}

const ready = (daemon: 'mon' | 'mgr' | 'osd') => ({
  exec: { command: ['podstack-ceph-ready', daemon] },
  periodSeconds: 5,
  timeoutSeconds: 10,
  failureThreshold: 3,
});

export const ceph = defineService({
  name: 'ceph',
  description: 'Ceph, block storage for volumes: a monitor, a manager and one OSD in a file',
  kind: 'infrastructure',
  enabledByDefault: false,
  secrets: [
    'ceph_fsid',
    'ceph_mon_key',
    'ceph_admin_key',
    'ceph_mgr_key',
    'ceph_osd_key',
    'ceph_bootstrap_osd_key',
  ],
  needs: [],
  provides: { ceph: { unit: 'ceph-bootstrap' } },
  images: [{ name: 'ceph', parent: 'base' }],
  configFiles: ['ceph.conf'],
  fields: {
    osdSize: z
      .string()
      .regex(OSD_SIZE, 'must be a size in GiB such as 10Gi')
      .default('10Gi')
      .describe("The OSD's capacity: its BlueStore file grows up to this (sparse), on a claim 2Gi larger"),
  },
  example: 'osdSize: 20Gi',
  render(ctx) {
    const settings = ctx.spec.services.ceph!;
    const osdGi = Number(OSD_SIZE.exec(settings.osdSize as string)![1]);
    const s = ctx.secrets;
    const keys = {
      mon: cephxKey(s.ceph_mon_key),
      admin: cephxKey(s.ceph_admin_key),
      mgr: cephxKey(s.ceph_mgr_key),
      osd: cephxKey(s.ceph_osd_key),
      bootstrapOsd: cephxKey(s.ceph_bootstrap_osd_key),
    };
    const monAddress = ctx.endpoints.addresses.internal;
    const conf = renderIni(
      'ceph.conf',
      mergeIni(
        {
          global: {
            ...clientGlobal(ctx),
            osd_pool_default_size: 1,
            osd_pool_default_min_size: 1,
            osd_pool_default_pg_autoscale_mode: 'off',
            osd_crush_chooseleaf_type: 0,
            mon_allow_pool_size_one: 'true',
            mon_warn_on_pool_no_redundancy: 'false',
            // MON_DISK_LOW fires below 30 % free on the host's disk by default: a workstation's.
            mon_data_avail_warn: 5,
            // The manager's default modules (restful, iostat, nfs) serve nothing here.
            mgr_initial_modules: '',
            mon_cluster_log_to_file: 'false',
            err_to_stderr: 'true',
            mon_cluster_log_to_stderr: 'true',
          },
          mon: { mon_memory_target: 268435456 },
          osd: {
            osd_objectstore: 'bluestore',
            bluestore_block_create: 'true',
            bluestore_block_size: osdGi * 1024 ** 3,
            // A fixed cache: the autotuner's floor (osd_memory_target) is 896 MiB.
            bluestore_cache_autotune: 'false',
            bluestore_cache_size: 134217728,
            osd_op_num_shards: 1,
          },
        },
        ctx.overrides('ceph.conf'),
      ),
    );
    const cephConf: ConfigFile = {
      key: 'ceph.conf',
      dest: '/etc/ceph/ceph.conf',
      owner: 'root',
      mode: '0644',
      content: conf,
    };
    const keyring = (key: string, dest: string, entries: readonly KeyringEntry[]): ConfigFile => ({
      key,
      dest,
      owner: 'ceph',
      mode: '0600',
      content: renderKeyring(entries),
    });
    const admin: KeyringEntry = {
      entity: 'client.admin',
      key: keys.admin,
      caps: { mon: 'allow *', osd: 'allow *', mds: 'allow *', mgr: 'allow *' },
    };
    const mgr: KeyringEntry = {
      entity: 'mgr.x',
      key: keys.mgr,
      caps: { mon: 'allow profile mgr', osd: 'allow *', mds: 'allow *' },
    };
    const bootstrapOsd: KeyringEntry = {
      entity: 'client.bootstrap-osd',
      key: keys.bootstrapOsd,
      caps: { mon: 'allow profile bootstrap-osd' },
    };
    const label = (component: string) => componentLabels('ceph', component);
    const daemon = (
      name: string,
      component: string,
      files: readonly ConfigFile[],
      script: string,
      claim?: { name: string; size: string; path: string },
      env: { name: string; value: string }[] = [],
    ) => {
      const { volumes, volumeMounts } = podMounts([
        configMount(`${name}-config`),
        ...(claim ? [{ name: 'data', source: { claim: claim.name }, path: claim.path }] : []),
      ]);
      return [
        secret(`${name}-config`, label(component), configBundle(files)),
        ...(claim ? [persistentVolumeClaim(claim.name, label(component), claim.size)] : []),
        deployment(name, label(component), {
          // A daemon's name in the cluster is fixed (mon.a, mgr.x, osd.0): never two at once.
          hostname: name,
          volumes,
          containers: [
            startContainer(name, ctx.image('ceph'), [script], {
              env,
              volumeMounts,
              readinessProbe: ready(component as 'mon' | 'mgr' | 'osd'),
            }),
          ],
        }),
      ];
    };
    const monService = service(
      CEPH_MON,
      label('mon'),
      [
        { name: 'msgr2', port: 3300 },
        { name: 'msgr1', port: 6789 },
      ],
      [monAddress],
    );
    const units: Unit[] = [
      {
        name: 'ceph-mon',
        service: 'ceph',
        description: 'Ceph monitor mon.a with its store on a claim, published on the internal address',
        dependsOn: [],
        objects: [
          ...daemon(
            'ceph-mon',
            'mon',
            [
              cephConf,
              keyring('mkfs.keyring', '/etc/ceph/mkfs.keyring', [
                { entity: 'mon.', key: keys.mon, caps: { mon: 'allow *' } },
                admin,
                mgr,
                bootstrapOsd,
              ]),
            ],
            'podstack-ceph-mon',
            { name: 'ceph-mon-data', size: '2Gi', path: '/var/lib/ceph/mon' },
            [{ name: 'PODSTACK_CEPH_MON_ADDRESS', value: monAddress }],
          ),
          monService,
        ],
      },
      {
        name: 'ceph-mgr',
        service: 'ceph',
        description: 'Ceph manager mgr.x',
        dependsOn: ['ceph-mon'],
        objects: daemon(
          'ceph-mgr',
          'mgr',
          [cephConf, keyring('mgr.keyring', '/etc/ceph/mgr.keyring', [mgr])],
          'podstack-ceph-mgr',
        ),
      },
      {
        name: 'ceph-osd',
        service: 'ceph',
        description: `Ceph OSD osd.0: BlueStore in a ${osdGi}Gi sparse file on its claim`,
        dependsOn: ['ceph-mon'],
        objects: daemon(
          'ceph-osd',
          'osd',
          [
            cephConf,
            keyring('osd.keyring', '/etc/ceph/osd.keyring', [{ entity: 'osd.0', key: keys.osd, caps: {} }]),
            keyring('bootstrap-osd.keyring', '/etc/ceph/bootstrap-osd.keyring', [bootstrapOsd]),
            {
              key: 'osd-new.json',
              dest: '/etc/ceph/osd-new.json',
              owner: 'root',
              mode: '0600',
              content: `${JSON.stringify({ cephx_secret: keys.osd })}\n`,
            },
            {
              key: 'osd-uuid',
              dest: '/etc/ceph/osd-uuid',
              owner: 'root',
              mode: '0644',
              content: `${uuidFrom(s.ceph_fsid, 'osd.0')}\n`,
            },
          ],
          'podstack-ceph-osd',
          { name: 'ceph-osd-data', size: `${osdGi + 2}Gi`, path: '/var/lib/ceph/osd' },
        ),
      },
    ];
    units.push({
      name: 'ceph-bootstrap',
      service: 'ceph',
      description: `Ceph pools (${VOLUMES_POOL}) and settings; waits for HEALTH_OK`,
      dependsOn: ['ceph-mgr', 'ceph-osd'],
      objects: adminJob(ctx, {
        name: 'ceph-bootstrap',
        labels: label('bootstrap'),
        files: [cephConf, keyring('admin.keyring', '/etc/ceph/ceph.client.admin.keyring', [admin])],
        pools: VOLUMES_POOL,
      }),
    });
    return units;
  },
});
