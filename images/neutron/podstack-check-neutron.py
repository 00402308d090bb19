#!/usr/bin/python3
"""Build-time test of podstack-patch-neutron.py: neutron's own code, fed
Chassis rows as OVN 23.03 writes them (configuration in other_config,
external_ids empty), must find the bridge mappings and the gateway flag, and
bind a port with datapath_type=netdev. Exits non-zero (failing the image
build) if any expectation is not met. No database or network is used.
"""
import sys
import threading
import types
from unittest import mock

from neutron.common.ovn import constants as ovn_const
from neutron.common.ovn import utils
from neutron.plugins.ml2.drivers.ovn.agent import neutron_agent
from neutron.plugins.ml2.drivers.ovn.mech_driver import mech_driver
from neutron.plugins.ml2.drivers.ovn.mech_driver.ovsdb import impl_idl_ovn
from neutron.plugins.ml2.drivers.ovn.mech_driver.ovsdb import ovsdb_monitor


def chassis(other_config=None, external_ids=None, name='ch1'):
    return types.SimpleNamespace(
        name=name, hostname='host1', nb_cfg=0,
        other_config=other_config or {}, external_ids=external_ids or {})


NEW = chassis(other_config={
    'ovn-bridge-mappings': 'physnet1:br-ex',
    'ovn-cms-options': 'enable-chassis-as-gw',
    'datapath-type': 'netdev',
    'iface-types': 'afxdp,geneve,internal,system,tap,vxlan'})
OLD_STYLE = chassis(name='ch2', external_ids={
    'ovn-bridge-mappings': 'physnet2:br-x', 'ovn-cms-options': ''})
errors = []


def expect(what, got, want):
    status = 'ok' if got == want else 'FAILED'
    print(f'{status}: {what}: {got!r}' + ('' if got == want else f' != {want!r}'))
    if got != want:
        errors.append(what)


# 1. LP#1990229: every reader of the chassis' configuration
expect('utils.is_gateway_chassis(other_config)', utils.is_gateway_chassis(NEW), True)
expect('utils.is_gateway_chassis(external_ids)', utils.is_gateway_chassis(OLD_STYLE), False)
sb = impl_idl_ovn.OvsdbSbOvnIdl.__new__(impl_idl_ovn.OvsdbSbOvnIdl)
expect('OvsdbSbOvnIdl._get_chassis_physnets(other_config)', sb._get_chassis_physnets(NEW), ['physnet1'])
expect('OvsdbSbOvnIdl._get_chassis_physnets(external_ids)', sb._get_chassis_physnets(OLD_STYLE), ['physnet2'])
sb.chassis_list = lambda: mock.Mock(execute=lambda check_error: [NEW, OLD_STYLE])
expect('OvsdbSbOvnIdl.get_gateway_chassis_from_cms_options', sb.get_gateway_chassis_from_cms_options(), ['ch1'])
expect('OvsdbSbOvnIdl.get_chassis_and_physnets', sb.get_chassis_and_physnets(),
       {'ch1': ['physnet1'], 'ch2': ['physnet2']})

driver = mock.Mock()
driver.nb_ovn.nb_global.nb_cfg = 0
agent = neutron_agent.NeutronAgent.from_type(ovn_const.OVN_CONTROLLER_AGENT, NEW, driver)
expect('ovn-controller agent type', agent.agent_type, ovn_const.OVN_CONTROLLER_GW_AGENT)
expect('agent bridge-mappings', agent.as_dict()['configurations']['bridge-mappings'], 'physnet1:br-ex')

event = ovsdb_monitor.ChassisEvent.__new__(ovsdb_monitor.ChassisEvent)
expect('ChassisEvent: bridge mappings changed in other_config',
       event.match_fn(event.ROW_UPDATE, NEW, types.SimpleNamespace(other_config={})), True)
expect('ChassisEvent: unrelated column changed',
       event.match_fn(event.ROW_UPDATE, NEW, types.SimpleNamespace(nb_cfg=5)), False)
expect('ChassisEvent: other_config changed, not mappings/gateway',
       event.match_fn(event.ROW_UPDATE, NEW, types.SimpleNamespace(
           other_config=dict(NEW.other_config, **{'iface-types': 'tap'}))), False)
type_event = ovsdb_monitor.ChassisAgentTypeChangeEvent.__new__(ovsdb_monitor.ChassisAgentTypeChangeEvent)
expect('ChassisAgentTypeChangeEvent: became a gateway',
       type_event.match_fn(type_event.ROW_UPDATE, NEW, types.SimpleNamespace(
           other_config=dict(NEW.other_config, **{'ovn-cms-options': ''}))), True)

# 2. bind_port: vif_type ovs with datapath_type netdev on a netdev chassis
md = mech_driver.OVNMechanismDriver.__new__(mech_driver.OVNMechanismDriver)
md.sg_enabled = True
md._setup_vif_port_bindings()
md._post_fork_event = threading.Event()
md._post_fork_event.set()
md._sb_ovn = sb
md._ovn_client_inst = mock.Mock()
md._ovn_client_inst.determine_bind_host.return_value = 'host1'


def bind(ch, network_type='flat', physnet='physnet1'):
    context = mock.Mock()
    context.current = {'id': 'p1', 'binding:vnic_type': 'normal', 'binding:profile': {}}
    context.segments_to_bind = [{'id': 's1', 'network_type': network_type,
                                 'segmentation_id': None, 'physical_network': physnet}]
    found = [types.SimpleNamespace(alive=True, chassis=ch)]
    with mock.patch.object(neutron_agent.AgentCache(driver=driver), 'get_agents', return_value=found):
        md.bind_port(context)
    return context.set_binding.call_args.args if context.set_binding.called else None


expect('bind_port flat physnet1 on a netdev chassis', bind(NEW),
       ('s1', 'ovs', {'port_filter': True, 'connectivity': 'l2', 'datapath_type': 'netdev'}))
expect('bind_port geneve on a system chassis', bind(chassis(other_config={'datapath-type': 'system'}), 'geneve', None),
       ('s1', 'ovs', {'port_filter': True, 'connectivity': 'l2'}))
expect('bind_port flat physnet1 on a chassis without that mapping', bind(OLD_STYLE), None)
expect('the shared vif_details are left unchanged', md.vif_details['ovs'], {'port_filter': True, 'connectivity': 'l2'})
md._sb_ovn = mock.Mock()
md._sb_ovn.chassis_list.return_value.execute.return_value = [NEW]
expect('get_supported_vif_types (netdev, no DPDK)', md.get_supported_vif_types(), ['ovs'])

if errors:
    print(f'podstack-check-neutron: {len(errors)} check(s) failed', file=sys.stderr)
    sys.exit(1)
print('podstack-check-neutron: all checks passed')
