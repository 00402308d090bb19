#!/usr/bin/python3
"""Patches Debian's python3-neutron 21.0.0 (Zed), and python3-eventlet 0.33.1 for
it, at image build time.

Each change replaces an exact piece of the packaged source, which must occur
exactly as often as stated: if a package update moved or changed it, this
script fails and with it the image build (better than a neutron that silently
misbehaves). podstack-check-neutron.py then tests the result.

1. LP#1990229 (backport of the upstream fix's idea, get_ovn_chassis_other_config):
   neutron 21.0.0 reads a chassis' ovn-bridge-mappings, ovn-cms-options,
   datapath-type and iface-types from SB Chassis.external_ids only. OVN >= 22.09
   (Debian 12 has 23.03) publishes them in Chassis.other_config and leaves
   external_ids empty. Unpatched, neutron refuses to bind ports on flat/vlan
   networks ("no bridge mapping"), sees no gateway chassis (routers get no
   external gateway port scheduled) and shows no bridge mappings for agents.
   Here every such read goes through get_ovn_chassis_other_config(), which
   merges both columns (other_config wins), and the SB event handlers compare
   the chassis before and after an update with both columns.

2. VIF_TYPE_OVS binding details carry datapath_type=netdev when the chassis'
   datapath-type is netdev. Otherwise os-vif in nova-compute runs
   ensure_ovs_bridge(br-int, 'system'), which turns the userspace br-int into
   a kernel one: vswitchd fails to create it, drops every br-int port, and
   ovn-controller puts netdev back ~50 ms later (measured: ~1.1 s outage for
   every VM on the host at each VIF plug). With the key, os-vif keeps netdev.
3. An API worker that is told to stop (SIGTERM, as a roll's old generation is)
   drains instead of dropping what it has. Unpatched, WorkerService.stop()
   kills the eventlet.wsgi server's green thread and returns at once; the
   process then exits with the requests in progress, whose clients see their
   connection closed with no answer (measured: 4 of 723 requests in a roll).
   Patched, it first shuts the listening socket down (shutdown(2) stops a
   listener even while the parent and the RPC workers, which inherited it,
   still hold it), so the kernel sends nothing more to this generation and
   moves what is queued on it to the new generation's socket
   (net.ipv4.tcp_migrate_req); then it waits until the server has finished
   its requests. eventlet.wsgi's server ends when accept() fails on the
   closed socket and waits for its requests itself, once change 4 lets it.

4. python3-eventlet 0.33.1 (a backport of eventlet#912, in 0.36): its
   wsgi.server, when it ends, shuts down every connection it calls idle
   before it waits for the requests in progress, and it calls every
   connection idle, since nothing ever marks one as serving a request. So
   the requests change 3 waits for would still lose their answer. Patched, a
   connection is marked as serving from its request line on, and idle again
   once answered; and a connection just accepted counts as serving too, not
   idle. With one request per connection (wsgi_keep_alive = False, as podstack
   sets it) every accepted connection is a request on its way: one accepted in
   the last moment before the stop, whose request line had not been read yet,
   was shut down with no answer (measured: 1 request in a CI roll; the build
   check reproduces it every time). Such a connection is bounded by the roll's
   grace period, not left to client_socket_timeout.
5. OVN's hash ring (which neutron-server handles each OVN event) by node,
   not by host. Upstream, a server deletes every ring node of its host when
   it starts and again when it exits (CONF.host, the pod's hostname). When
   two generations share a hostname, as they do while a roll on Podman runs
   them in one pod, the old one's exit deleted the new one's node: the new
   server then handled no OVN event at all, ports never went ACTIVE, and
   every new guest failed after nova's 300 s wait for "vif plugged"
   (measured). Patched: a server removes this host's nodes made before it
   started at the moment its API worker adds its own (one transaction, so
   the ring is never empty: a predecessor that crashed is gone at once, and
   an old generation still serving hands over with no gap), and at exit it
   removes only the nodes it made (their ids kept in a file of its own
   container). On Kubernetes each pod has its own hostname and nothing
   changes.
6. The metadata agent's veth, made anew, gets a new OVS port. Its network
   namespace goes with the agent's container (a crash, a repair), and with it
   both ends of the veth; the next agent makes the veth again under the same
   name, and found the old Port and Interface rows still in br-int, so it
   added nothing. The kernel datapath follows a device by name, but the
   userspace (netdev) datapath br-int is here kept reading the deleted
   device: nothing the namespace sent reached OVN, no guest reached the
   metadata service, and every guest booted after a restart of the agent
   came up without its SSH key (measured). Patched, the agent deletes the
   stale port before it makes the veth, and adds it fresh after.
"""
import py_compile
import sys

ROOT = '/usr/lib/python3/dist-packages/'

UTILS = 'neutron/common/ovn/utils.py'
IDL = 'neutron/plugins/ml2/drivers/ovn/mech_driver/ovsdb/impl_idl_ovn.py'
MONITOR = 'neutron/plugins/ml2/drivers/ovn/mech_driver/ovsdb/ovsdb_monitor.py'
PLACEMENT = 'neutron/plugins/ml2/drivers/ovn/mech_driver/ovsdb/extensions/placement.py'
AGENT = 'neutron/plugins/ml2/drivers/ovn/agent/neutron_agent.py'
MECH = 'neutron/plugins/ml2/drivers/ovn/mech_driver/mech_driver.py'
WSGI = 'neutron/wsgi.py'
EVENTLET_WSGI = 'eventlet/wsgi.py'
HASH_RING_DB = 'neutron/db/ovn_hash_ring_db.py'
METADATA_AGENT = 'neutron/agent/ovn/metadata/agent.py'

# (file, old text, new text, how many times old occurs)
CHANGES = [
    # --- 1. LP#1990229: the helpers, and get_ovn_cms_options through them
    (UTILS, '''\
def get_ovn_cms_options(chassis):
    """Return the list of CMS options in a Chassis."""
    return [opt.strip() for opt in chassis.external_ids.get(
            constants.OVN_CMS_OPTIONS, '').split(',')]
''', '''\
def get_ovn_chassis_other_config(chassis):
    """Return the configuration a Chassis publishes (podstack, LP#1990229).

    OVN >= 22.09 publishes ovn-bridge-mappings, ovn-cms-options,
    datapath-type, iface-types... in Chassis.other_config; older OVN in
    Chassis.external_ids. Both are merged, other_config winning.
    """
    config = dict(getattr(chassis, 'external_ids', None) or {})
    config.update(getattr(chassis, 'other_config', None) or {})
    return config


def get_ovn_chassis_before_update(row, old):
    """Return a Chassis as it was before an OVSDB update (podstack).

    In an update event, ``old`` holds only the columns that changed; the
    others are taken from ``row``.
    """
    import types
    return types.SimpleNamespace(
        name=row.name,
        hostname=getattr(old, 'hostname', getattr(row, 'hostname', '')),
        external_ids=getattr(old, 'external_ids',
                             getattr(row, 'external_ids', {})),
        other_config=getattr(old, 'other_config',
                             getattr(row, 'other_config', {})))


def get_ovn_cms_options(chassis):
    """Return the list of CMS options in a Chassis."""
    return [opt.strip() for opt in get_ovn_chassis_other_config(chassis).get(
            constants.OVN_CMS_OPTIONS, '').split(',')]
''', 1),
    # SB API: physnets of a chassis, gateway chassis, card serial number
    (IDL, '''\
        bridge_mappings = chassis.external_ids.get('ovn-bridge-mappings', '')
''', '''\
        bridge_mappings = utils.get_ovn_chassis_other_config(chassis).get(
            'ovn-bridge-mappings', '')
''', 1),
    (IDL, 'ch.external_ids.get(', 'utils.get_ovn_chassis_other_config(ch).get(', 2),
    # Placement extension (bandwidth, bridge mappings of a chassis)
    (PLACEMENT, '''\
    bridge_mappings = chassis.external_ids.get('ovn-bridge-mappings', '')
''', '''\
    bridge_mappings = ovn_utils.get_ovn_chassis_other_config(chassis).get(
        'ovn-bridge-mappings', '')
''', 1),
    # Agents API: bridge mappings shown, gateway agent type
    (AGENT, '''\
                'bridge-mappings':
                    self.chassis.external_ids.get('ovn-bridge-mappings', '')},
''', '''\
                'bridge-mappings':
                    ovn_utils.get_ovn_chassis_other_config(
                        self.chassis).get('ovn-bridge-mappings', '')},
''', 1),
    (AGENT, '''\
        external_ids = cls.chassis_from_private(chassis_private).external_ids
''', '''\
        external_ids = ovn_utils.get_ovn_chassis_other_config(
            cls.chassis_from_private(chassis_private))
''', 1),
    (AGENT, '''\
        external_ids = self.chassis_from_private(chassis_private).external_ids
''', '''\
        external_ids = ovn_utils.get_ovn_chassis_other_config(
            self.chassis_from_private(chassis_private))
''', 2),
    # SB events: a chassis' bridge mappings / gateway status changed
    (MONITOR, '''\
        if not hasattr(old, 'external_ids') and event == self.ROW_UPDATE:
            return False
        if (old.external_ids.get('ovn-bridge-mappings') !=
                row.external_ids.get('ovn-bridge-mappings')):
            return True
''', '''\
        if (not hasattr(old, 'external_ids') and
                not hasattr(old, 'other_config')):
            return False
        old = utils.get_ovn_chassis_before_update(row, old)
        if (utils.get_ovn_chassis_other_config(old).get(
                'ovn-bridge-mappings') !=
                utils.get_ovn_chassis_other_config(row).get(
                    'ovn-bridge-mappings')):
            return True
''', 1),
    (MONITOR, '''\
    def run(self, event, row, old):
        host = row.hostname
        phy_nets = []
        if event != self.ROW_DELETE:
            bridge_mappings = row.external_ids.get('ovn-bridge-mappings', '')
''', '''\
    def run(self, event, row, old):
        if event == self.ROW_UPDATE:
            old = utils.get_ovn_chassis_before_update(row, old)
        host = row.hostname
        phy_nets = []
        if event != self.ROW_DELETE:
            bridge_mappings = utils.get_ovn_chassis_other_config(row).get(
                'ovn-bridge-mappings', '')
''', 1),
    (MONITOR, '''\
                old_mappings = old.external_ids.get('ovn-bridge-mappings',
                                                    set()) or set()
                new_mappings = row.external_ids.get('ovn-bridge-mappings',
                                                    set()) or set()
''', '''\
                old_mappings = utils.get_ovn_chassis_other_config(old).get(
                    'ovn-bridge-mappings', set()) or set()
                new_mappings = utils.get_ovn_chassis_other_config(row).get(
                    'ovn-bridge-mappings', set()) or set()
''', 1),
    (MONITOR, '''\
        if not getattr(old, 'external_ids', False):
            return False
        agent_type_change = n_agent.NeutronAgent.chassis_from_private(
                row).external_ids.get('ovn-cms-options', []) != (
                        old.external_ids.get('ovn-cms-options', []))
        return agent_type_change
''', '''\
        if (not hasattr(old, 'external_ids') and
                not hasattr(old, 'other_config')):
            return False
        old = utils.get_ovn_chassis_before_update(row, old)
        agent_type_change = utils.get_ovn_chassis_other_config(
            n_agent.NeutronAgent.chassis_from_private(row)).get(
                'ovn-cms-options', []) != (
            utils.get_ovn_chassis_other_config(old).get(
                'ovn-cms-options', []))
        return agent_type_change
''', 1),
    # Mech driver: datapath-type / iface-types of the chassis
    (MECH, '''\
        for ch in self.sb_ovn.chassis_list().execute(check_error=True):
            dp_type = ch.external_ids.get('datapath-type', '')
            if dp_type == ovn_const.CHASSIS_DATAPATH_NETDEV:
                vif_types.add(portbindings.VIF_TYPE_VHOST_USER)
''', '''\
        for ch in self.sb_ovn.chassis_list().execute(check_error=True):
            # podstack: as bind_port decides (vhost-user needs DPDK too).
            other_config = ovn_utils.get_ovn_chassis_other_config(ch)
            dp_type = other_config.get('datapath-type', '')
            iface_types = other_config.get('iface-types', '').split(',')
            if (dp_type == ovn_const.CHASSIS_DATAPATH_NETDEV and
                    ovn_const.CHASSIS_IFACE_DPDKVHOSTUSER in iface_types):
                vif_types.add(portbindings.VIF_TYPE_VHOST_USER)
''', 1),
    (MECH, '''\
        datapath_type = chassis.external_ids.get('datapath-type', '')
        iface_types = chassis.external_ids.get('iface-types', '')
''', '''\
        other_config = ovn_utils.get_ovn_chassis_other_config(chassis)
        datapath_type = other_config.get('datapath-type', '')
        iface_types = other_config.get('iface-types', '')
''', 1),
    # --- 2. datapath_type=netdev in the OVS vif_details
    (MECH, '''\
                else:
                    vif_type = portbindings.VIF_TYPE_OVS
                    vif_details = self.vif_details[vif_type]
''', '''\
                else:
                    vif_type = portbindings.VIF_TYPE_OVS
                    vif_details = self.vif_details[vif_type]
                    # podstack: tell os-vif the bridge's datapath, or it
                    # resets a userspace br-int to "system".
                    if datapath_type == ovn_const.CHASSIS_DATAPATH_NETDEV:
                        vif_details = dict(vif_details)
                        vif_details[portbindings.OVS_DATAPATH_TYPE] = (
                            datapath_type)
''', 1),
    # --- 3. an API worker drains on SIGTERM
    (WSGI, '''\
    def stop(self):
        if isinstance(self._server, eventlet.greenthread.GreenThread):
            self._server.kill()
            self._server = None
''', '''\
    def stop(self):
        if isinstance(self._server, eventlet.greenthread.GreenThread):
            # podstack (podstack-patch-neutron.py, 3.): no new connection,
            # then finish the requests this worker has.
            try:
                self._service._socket.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            try:
                self._server.wait()
            except Exception:  # accept() on the closed socket: expected
                pass
            self._server = None
''', 1),
    # --- 4. eventlet#912: a connection serving a request is not idle
    (EVENTLET_WSGI, '''\
            self.handle_one_request()
            if self.conn_state[2] == STATE_CLOSE:
                self.close_connection = 1
            if self.close_connection:
''', '''\
            self.handle_one_request()
            if self.conn_state[2] == STATE_CLOSE:
                self.close_connection = 1
            else:
                self.conn_state[2] = STATE_IDLE
            if self.close_connection:
''', 1),
    (EVENTLET_WSGI, '''\
        self.raw_requestline = self._read_request_line()
        if not self.raw_requestline:
''', '''\
        self.raw_requestline = self._read_request_line()
        self.conn_state[2] = STATE_REQUEST
        if not self.raw_requestline:
''', 1),
    (EVENTLET_WSGI, '''\
                connections[client_addr] = connection = [client_addr, client_socket, STATE_IDLE]
''', '''\
                connections[client_addr] = connection = [client_addr, client_socket, STATE_REQUEST]
''', 1),
    # --- 5. the hash ring by node, not by host
    (HASH_RING_DB, '''\
def remove_nodes_from_host(context, group_name):
''', '''\
def podstack_take_over_host(context, group_name, started):
    """Adds a node, removing this host's nodes made before `started`.

    podstack (podstack-patch-neutron.py, 5.): in one transaction, so the
    ring always has a node of this host while a generation hands over.
    """
    with db_api.CONTEXT_WRITER.using(context):
        context.session.query(ovn_models.OVNHashRing).filter(
            ovn_models.OVNHashRing.hostname == CONF.host,
            ovn_models.OVNHashRing.group_name == group_name,
            ovn_models.OVNHashRing.created_at < started).delete()
        return add_node(context, group_name)


def podstack_remove_nodes(context, node_uuids):
    """Removes the given nodes (podstack: the ones this server made)."""
    with db_api.CONTEXT_WRITER.using(context):
        context.session.query(ovn_models.OVNHashRing).filter(
            ovn_models.OVNHashRing.node_uuid.in_(list(node_uuids))).delete(
                synchronize_session=False)


def remove_nodes_from_host(context, group_name):
''', 1),
    (MECH, '''\
        ovn_conf.register_opts()
        self._clean_hash_ring()
        self._post_fork_event = threading.Event()
''', '''\
        ovn_conf.register_opts()
        # podstack (podstack-patch-neutron.py, 5.): this host's earlier nodes
        # go when this server's API worker adds its own, not now.
        self._podstack_started = timeutils.utcnow().replace(microsecond=0)
        self._post_fork_event = threading.Event()
''', 1),
    (MECH, '''\
        atexit.register(self._clean_hash_ring)
        signal.signal(signal.SIGTERM, self._clean_hash_ring)
''', '''\
        atexit.register(self._podstack_remove_own_nodes)
        signal.signal(signal.SIGTERM, self._podstack_remove_own_nodes)
''', 1),
    (MECH, '''\
    def _clean_hash_ring(self, *args, **kwargs):
        admin_context = n_context.get_admin_context()
        ovn_hash_ring_db.remove_nodes_from_host(admin_context,
                                                self.hash_ring_group)
''', '''\
    def _clean_hash_ring(self, *args, **kwargs):
        admin_context = n_context.get_admin_context()
        ovn_hash_ring_db.remove_nodes_from_host(admin_context,
                                                self.hash_ring_group)

    # podstack (podstack-patch-neutron.py, 5.): in the container's own /tmp.
    _PODSTACK_NODES = '/tmp/podstack-ovn-hash-ring-nodes'

    def _podstack_remove_own_nodes(self, *args, **kwargs):
        try:
            with open(self._PODSTACK_NODES, encoding='utf-8') as f:
                nodes = [line.strip() for line in f if line.strip()]
        except OSError:
            return
        if nodes:
            ovn_hash_ring_db.podstack_remove_nodes(
                n_context.get_admin_context(), nodes)
''', 1),
    (MECH, '''\
            admin_context = n_context.get_admin_context()
            self.node_uuid = ovn_hash_ring_db.add_node(admin_context,
                                                       self.hash_ring_group)
''', '''\
            admin_context = n_context.get_admin_context()
            self.node_uuid = ovn_hash_ring_db.podstack_take_over_host(
                admin_context, self.hash_ring_group, self._podstack_started)
            with open(self._PODSTACK_NODES, 'a', encoding='utf-8') as f:
                f.write(self.node_uuid + '\\n')
''', 1),
    # --- 6. a veth made anew gets a new OVS port
    (METADATA_AGENT, '''\
            if ip1.exists():
                ip1.link.delete()
            ip1, ip2 = ip_lib.IPWrapper().add_veth(
                veth_name[0], veth_name[1], namespace)
''', '''\
            if ip1.exists():
                ip1.link.delete()
            # podstack (podstack-patch-neutron.py, 6.): the port of the
            # veth that went keeps the userspace datapath on the old device.
            self.ovs_idl.del_port(veth_name[0], if_exists=True).execute()
            ip1, ip2 = ip_lib.IPWrapper().add_veth(
                veth_name[0], veth_name[1], namespace)
''', 1),
]


def main():
    texts = {}
    failed = False
    for path, old, new, count in CHANGES:
        text = texts.get(path)
        if text is None:
            with open(ROOT + path, encoding='utf-8') as f:
                text = f.read()
        found = text.count(old)
        if found != count:
            print(f'podstack-patch-neutron: {path}: expected {count} '
                  f'occurrence(s), found {found}, of:\n{old}', file=sys.stderr)
            failed = True
            continue
        texts[path] = text.replace(old, new)
    if failed:
        sys.exit(1)
    for path, text in texts.items():
        with open(ROOT + path, 'w', encoding='utf-8') as f:
            f.write(text)
        py_compile.compile(ROOT + path, doraise=True)
        print(f'podstack-patch-neutron: patched {path}')


if __name__ == '__main__':
    main()
