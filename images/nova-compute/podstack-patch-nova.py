#!/usr/bin/python3
"""Patches Debian's python3-nova 26.2.2 (Zed) at image build time, so that
`openstack console log show` works with libvirtd in another container.

For QEMU guests nova gives the serial console a pty and has QEMU log it to
the instance's console.log. To show the log, nova first drains the pty
(/dev/pts/N) from its own container, and returns nothing if that path does
not exist there. libvirtd runs in the node pod's other container, with its
own /dev/pts (Kolla and openstack-helm share the host's /dev instead, which
podstack does not: the pod keeps to its own namespaces), so the pty is never
found, or a pty of the same name that is not the guest's is (and a read of
it could block the whole eventlet process). QEMU logs every byte to
console.log, in the folder both containers share: always read that.

The build fails if the source is not exactly as expected.
"""
import py_compile
import sys

PATH = '/usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py'
OLD = '''        # instance has a console, but file doesn't exist (yet?)
        if not os.path.exists(console_path):
'''
NEW = '''        # podstack: libvirtd's pty is in another container; console.log has it all.
        if console_type == 'pty':
            console_type = 'file'
            console_path = self._get_console_log_path(instance)

        # instance has a console, but file doesn't exist (yet?)
        if not os.path.exists(console_path):
'''
src = open(PATH, encoding='utf-8').read()
if src.count(OLD) != 1:
    sys.exit(f'podstack-patch-nova: {PATH} changed: the piece to patch occurs {src.count(OLD)} times, not once')
open(PATH, 'w', encoding='utf-8').write(src.replace(OLD, NEW))
py_compile.compile(PATH, doraise=True)
print('podstack-patch-nova: console output falls back to console.log')
