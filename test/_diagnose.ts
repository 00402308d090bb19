import type { CloudNode, OpenStack } from './_cloud-checks.js';

/** The OVN southbound database's address, as the node's switch has it (already resolved). */
export async function southboundRemote(node: CloudNode): Promise<string> {
  const r = await node.runInPod('ovs-vsctl', ['get', 'Open_vSwitch', '.', 'external_ids:ovn-remote']);
  if (r.exitCode !== 0) throw new Error(`the node's switch has no ovn-remote: ${r.output}`);
  return r.output.trim().replace(/^"|"$/g, '');
}

/**
 * What the cloud knew of a server when a check of its network failed: from the API (the server's
 * states, the compute services, its ports, the agents, its console), from OVN (each port's
 * logical switch port with its DHCP options, and its binding), from the node's switch, and the
 * last lines of the node's logs. A guest's network failed twice in CI and never by hand; the
 * next failure must say where it stopped without a second run.
 *
 * Each part is asked on its own: one that cannot be asked (a dead container) is said, and the
 * others still are.
 */
export async function describeServer(openstack: OpenStack, node: CloudNode, name: string): Promise<string> {
  const ask = async (title: string, what: () => Promise<string>) => {
    const text = await what().catch((e: Error) => `(could not ask: ${e.message})`);
    return `--- ${title}\n${text.trimEnd()}`;
  };
  const inPod = async (program: string, ...args: string[]) => {
    const r = await node.runInPod(program, args);
    return r.exitCode === 0 ? r.output : `(exit ${r.exitCode}) ${r.output}`;
  };
  const ports = await openstack('port', 'list', '--server', name, '-f', 'value', '-c', 'ID')
    .then((out) => out.split('\n').filter(Boolean))
    .catch(() => [] as string[]);
  const ovn = async () => {
    // The northbound database is on the port after the southbound's.
    const sb = await southboundRemote(node);
    const nb = sb.replace(/:(\d+)$/, (_, port: string) => `:${Number(port) - 1}`);
    const parts = await Promise.all(
      ports.map(async (id) =>
        [
          await inPod(
            'ovn-nbctl',
            `--db=${nb}`,
            '--columns=name,up,enabled,addresses,port_security,dhcpv4_options,options',
            'list',
            'Logical_Switch_Port',
            id,
          ),
          await inPod(
            'ovn-sbctl',
            `--db=${sb}`,
            '--columns=logical_port,chassis,up,mac',
            'find',
            'Port_Binding',
            `logical_port=${id}`,
          ),
        ].join('\n'),
      ),
    );
    return [
      ...parts,
      // A floating IP is answered for by its NAT row, on the chassis its gateway port is bound to.
      await inPod(
        'ovn-nbctl',
        `--db=${nb}`,
        '--columns=type,external_ip,logical_ip,logical_port,external_mac',
        'list',
        'NAT',
      ),
      await inPod('ovn-nbctl', `--db=${nb}`, 'list', 'Gateway_Chassis'),
      await inPod(
        'ovn-sbctl',
        `--db=${sb}`,
        '--columns=logical_port,chassis,up',
        'find',
        'Port_Binding',
        'type=chassisredirect',
      ),
      await inPod('ovn-nbctl', `--db=${nb}`, 'list', 'DHCP_Options'),
      await inPod('ovn-sbctl', `--db=${sb}`, 'show'),
    ].join('\n');
  };
  const sections = [
    ask('server', () =>
      openstack(
        'server',
        'show',
        name,
        '-f',
        'yaml',
        ...['status', 'OS-EXT-STS:vm_state', 'OS-EXT-STS:task_state', 'OS-EXT-STS:power_state'].flatMap(
          (c) => ['-c', c],
        ),
        ...['OS-EXT-SRV-ATTR:host', 'addresses', 'updated'].flatMap((c) => ['-c', c]),
      ),
    ),
    ask('compute services', () => openstack('compute', 'service', 'list', '-f', 'value')),
    ask('ports', () => openstack('port', 'list', '--server', name, '--long', '-f', 'yaml')),
    ask('network agents', () => openstack('network', 'agent', 'list', '-f', 'value')),
    ask('console, last 25 lines', () => openstack('console', 'log', 'show', '--lines', '25', name)),
    ask('OVN: the ports, their bindings, the DHCP options, the chassis', ovn),
    ask('the node switch', () => inPod('ovs-vsctl', 'show')),
    // A tap left down (no UP flag) was the cause once: the kernel's view and OVS's of each port.
    ask('the guest ports: link flags, and the admin and link state OVS has', async () =>
      [
        await node.run('ip', ['-o', 'link', 'show']).then((r) =>
          r.output
            .split('\n')
            .filter((l) => /: tap/.test(l))
            .join('\n'),
        ),
        await inPod('ovs-vsctl', '--columns=name,ofport,admin_state,link_state,error', 'list', 'Interface'),
        await inPod('podstack-ovs-ports'),
      ].join('\n'),
    ),
    // "No route to host" on a floating IP is an ARP request nobody answered: what the node asked.
    ask("the node's addresses, routes and neighbours", async () =>
      (
        await Promise.all(
          [['-br', 'addr'], ['route'], ['neigh']].map(async (args) => (await node.run('ip', args)).output),
        )
      ).join('\n'),
    ),
    ask('ovn-controller', () => inPod('ovn-appctl', '-t', 'ovn-controller', 'connection-status')),
    ...(
      [
        ['nova-compute', 40],
        ['libvirt', 15],
        ['ovn-controller', 40],
        ['ovs-vswitchd', 20],
        ['ovn-metadata-agent', 30],
      ] as const
    ).map(([container, lines]) =>
      ask(`log of ${container}, last ${lines} lines`, async () => {
        // Log records only: nova-compute prints the host's capabilities, hundreds of XML lines.
        const log = await node.logs(container, 400);
        const records = log.split('\n').filter((l) => !/^\s*</.test(l));
        return records.slice(-lines).join('\n');
      }),
    ),
  ];
  return (await Promise.all(sections)).join('\n');
}
