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

The second patch makes a guest's tap exist, and be up, before os-vif adds its
port to Open vSwitch (the comment above VIF says why).

The build fails if the source is not exactly as expected.
"""
import py_compile
import sys

DRIVER = '/usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py'
CONSOLE_OLD = '''        # instance has a console, but file doesn't exist (yet?)
        if not os.path.exists(console_path):
'''
CONSOLE_NEW = '''        # podstack: libvirtd's pty is in another container; console.log has it all.
        if console_type == 'pty':
            console_type = 'file'
            console_path = self._get_console_log_path(instance)

        # instance has a console, but file doesn't exist (yet?)
        if not os.path.exists(console_path):
'''

# Open vSwitch's userspace datapath (the only one podstack's hosts have) opens a port's Linux
# device and turns on IFF_PROMISC with SIOCSIFFLAGS, computed from the flags it cached when it
# opened the device (netdev-linux update_flags), not from the kernel's. Nova's usual order is:
# os-vif adds the port for a tap that does not exist yet, then libvirt creates the tap, sets its
# MAC and sets it up. vswitchd opens the tap as soon as it appears; when libvirt's "up" lands
# between vswitchd's read of the flags and its write, the write takes IFF_UP away again, and
# the guest's tap stays down: its DHCPDISCOVER never reaches OVN. Making the tap first, up, as
# nova's own plug_tap does for VIF_TYPE_TAP, leaves nothing to race: vswitchd reads the flags
# of a tap that is already up, and libvirt opens the existing tap (type='ethernet' takes one)
# and deletes it with the domain, as it does its own. The queues must match the ones libvirt
# will ask for (a multi-queue tap cannot be opened single-queue), so they are nova's own.
VIF = '/usr/lib/python3/dist-packages/nova/virt/libvirt/vif.py'
PLUG_OLD = '''        vif_obj = os_vif_util.nova_to_osvif_vif(vif)
        if vif_obj is not None:
            self._plug_os_vif(instance, vif_obj)
            return
'''
PLUG_NEW = '''        vif_obj = os_vif_util.nova_to_osvif_vif(vif)
        if vif_obj is not None:
            self._podstack_tap_first(instance, vif_obj)
            self._plug_os_vif(instance, vif_obj)
            return
'''
METHOD_OLD = '''    def _plug_os_vif(self, instance, vif):
'''
METHOD_NEW = '''    @staticmethod
    def _podstack_own_tap(vif):
        """podstack: an OVS port on a userspace (netdev) bridge, created by os-vif."""
        profile = getattr(vif, 'port_profile', None)
        return (isinstance(vif, osv_vifs.VIFOpenVSwitch) and profile is not None and
                profile.obj_attr_is_set('create_port') and profile.create_port and
                profile.obj_attr_is_set('datapath_type') and
                profile.datapath_type == 'netdev')

    def _podstack_tap_first(self, instance, vif):
        """podstack: the tap exists and is up before os-vif adds it to a netdev bridge."""
        if not self._podstack_own_tap(vif):
            return
        multiqueue = False
        image_meta = instance.image_meta
        if (self.get_vif_model(image_meta=image_meta) ==
                network_model.VIF_MODEL_VIRTIO):
            _driver, queues = self._get_virtio_mq_settings(
                image_meta, instance.flavor)
            multiqueue = bool(queues and queues > 1)
        # The tap's own MAC as libvirt would make it: the guest's with fe as its first byte.
        nova.privsep.linux_net.create_tap_dev(vif.vif_name,
                                              'fe' + vif.address[2:],
                                              multiqueue=multiqueue)
        LOG.debug('podstack: tap %s made and up before its OVS port',
                  vif.vif_name, instance=instance)

    def _plug_os_vif(self, instance, vif):
'''

# libvirt 9 refuses a tap that exists for a managed <interface type='ethernet'> ("The tapX
# interface already exists"): the domain says managed='no', so libvirt opens the tap nova made
# and leaves it be (os-vif's unplug deletes it, as it deletes any port's device).
VIF_CONFIG_OLD = '''        if 'create_port' in vif.port_profile and vif.port_profile.create_port:
            self._set_config_VIFGeneric(instance, vif, conf)
        else:
'''
VIF_CONFIG_NEW = '''        if 'create_port' in vif.port_profile and vif.port_profile.create_port:
            self._set_config_VIFGeneric(instance, vif, conf)
            conf.podstack_unmanaged_tap = self._podstack_own_tap(vif)
        else:
'''
CONFIG = '/usr/lib/python3/dist-packages/nova/virt/libvirt/config.py'
TARGET_OLD = '''        if self.target_dev is not None:
            dev.append(etree.Element("target", dev=self.target_dev))

        if self.vporttype is not None:
'''
TARGET_NEW = '''        if self.target_dev is not None:
            target = etree.Element("target", dev=self.target_dev)
            if getattr(self, 'podstack_unmanaged_tap', False):
                target.set("managed", "no")
            dev.append(target)

        if self.vporttype is not None:
'''


def patch(path: str, pieces: list) -> None:
    src = open(path, encoding='utf-8').read()
    for old, new in pieces:
        if src.count(old) != 1:
            sys.exit(f'podstack-patch-nova: {path} changed: the piece to patch occurs {src.count(old)} times, not once')
        src = src.replace(old, new)
    open(path, 'w', encoding='utf-8').write(src)
    py_compile.compile(path, doraise=True)


patch(DRIVER, [(CONSOLE_OLD, CONSOLE_NEW)])
print('podstack-patch-nova: console output falls back to console.log')
patch(VIF, [(PLUG_OLD, PLUG_NEW), (METHOD_OLD, METHOD_NEW), (VIF_CONFIG_OLD, VIF_CONFIG_NEW)])
patch(CONFIG, [(TARGET_OLD, TARGET_NEW)])
print('podstack-patch-nova: a guest tap is made, up, before its Open vSwitch port')
