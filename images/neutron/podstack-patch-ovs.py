#!/usr/bin/python3
"""Lets python-ovs (Debian's python3-openvswitch 3.1) connect to a host name.

Its inet_create_socket_active() takes anything that is not an IPv4 literal for
IPv6, so `tcp:ovn-central:6642` fails (and neutron-server then dies on
`'NoneType' object has no attribute 'setsockopt'`). A cloud's OVN databases
are known by their Service's name: on Podman a pod's address changes whenever
the pod is made again. Here a name is resolved (IPv4 first) each time a
connection is opened, so a reconnect follows the Service to its new address.
The build fails if the source is not exactly as expected.
"""
import py_compile
import sys

PATH = '/usr/lib/python3/dist-packages/ovs/socket_util.py'
OLD = '''    if not host_name:
        raise ValueError("%s: bad peer name format" % target)
    return (host_name, port)
'''
NEW = '''    if not host_name:
        raise ValueError("%s: bad peer name format" % target)
    if not is_valid_ipv4_address(host_name) and ':' not in host_name:
        # podstack: a host name, resolved at every connection (IPv4 first).
        try:
            infos = socket.getaddrinfo(host_name, port, 0, socket.SOCK_STREAM)
            infos.sort(key=lambda i: i[0] != socket.AF_INET)
            host_name = infos[0][4][0]
        except (socket.gaierror, IndexError):
            pass
    return (host_name, port)
'''

src = open(PATH, encoding='utf-8').read()
if src.count(OLD) != 1:
    sys.exit(f'podstack-patch-ovs: {PATH} changed: the piece to patch occurs {src.count(OLD)} times, not once')
open(PATH, 'w', encoding='utf-8').write(src.replace(OLD, NEW))
py_compile.compile(PATH, doraise=True)
from ovs import socket_util  # noqa: E402

assert socket_util.inet_parse_active('localhost:6642', 0) == ('127.0.0.1', 6642), 'name not resolved'
assert socket_util.inet_parse_active('192.0.2.1:6641', 0) == ('192.0.2.1', 6641)
print('podstack-patch-ovs: python-ovs resolves host names')
