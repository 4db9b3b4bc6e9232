#!/bin/busybox sh
# /init of the numa-vm guest (tests/numa-vm/numa-vm.sh copies it into the initramfs).
# The kernel hands the words after "--" on its command line to us as "$@": they are the
# expected layout, passed on to the test program. Before them it puts the boot words it does
# not know itself ("nokaslr", which only the decompressor reads): those are dropped here, up to
# the first word that starts with "--". The host harness reads the markers below
# from the serial console; keep their spelling in sync with numa-vm.sh.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "NUMA-VM-BEGIN $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpus, nodes online $(cat /sys/devices/system/node/online)"
while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do shift; done
/numa-vm-guest "$@"
rc=$?
echo "NUMA-VM-EXIT-STATUS: $rc"
if [ "$rc" -ne 0 ]; then
  echo "--- guest dmesg (last 40 lines) ---"
  dmesg | tail -n 40
fi
echo "NUMA-VM-DONE"
sync
poweroff -f
