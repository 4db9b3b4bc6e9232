#!/usr/bin/env bash
# tests/numa-vm/numa-vm.sh — boot QEMU guests with real NUMA nodes and run numamap's
# placement tests inside them. See tests/numa-vm/README.md.
#
#   numa-vm.sh --guest BIN [--work DIR] [--cache DIR] [--timeout SEC] SCENARIO...
#   numa-vm.sh --fetch-kernel [--cache DIR]     # only make sure the guest kernel is there
#   numa-vm.sh --list                           # the scenarios and their QEMU layout
#
# SCENARIO is one of two-nodes, two-packages, tiny-node, odd-nodes, or "all".
# Environment: NUMAMAP_VM_KERNEL (a bzImage to use instead of Debian's cloud kernel),
# NUMAMAP_VM_BUSYBOX (a static busybox), NUMAMAP_VM_QEMU (qemu-system-x86_64),
# NUMAMAP_VM_TIMEOUT (seconds per guest), NUMAMAP_VM_ENTRIES (map size in the guest).
#
# Every failure is loud: a missing qemu, kernel or busybox, a timeout, a guest that never
# printed its exit status or done marker, or a non-zero status ends this script with status 1
# and the guest's console output on stdout. Nothing is skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

guest=""
work=""
cache="${NUMAMAP_VM_CACHE:-$repo/.vm-cache}"
vm_timeout="${NUMAMAP_VM_TIMEOUT:-240}"
entries="${NUMAMAP_VM_ENTRIES:-1000000}"
fetch_only=0
list_only=0
scenarios=()

die() {
  echo "numa-vm: FAIL: $*" >&2
  exit 1
}
note() { echo "numa-vm: $*"; }

all_scenarios=(two-nodes two-packages tiny-node odd-nodes)

while [ $# -gt 0 ]; do
  case "$1" in
    --guest) guest="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    --timeout) vm_timeout="$2"; shift 2 ;;
    --entries) entries="$2"; shift 2 ;;
    --fetch-kernel) fetch_only=1; shift ;;
    --list) list_only=1; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    all) scenarios+=("${all_scenarios[@]}"); shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) scenarios+=("$1"); shift ;;
  esac
done

# ---------------------------------------------------------------------------------------------
# Scenarios. Each one sets the QEMU machine (smp, node sizes, cpus, distances) and, from the
# same data, the layout the guest program must find. Distances not listed are 10 on the
# diagonal; every off-diagonal pair is listed (QEMU then fills in the symmetric entry).
#   smp        -smp argument
#   node_mem   size in MiB of each node, in node order (0: a memory-less node)
#   node_cpus  cpus of each node ("0-1", "2", or "" for a CPU-less node), in node order
#   node_pkg   package (hwloc logical index) of each node, in node order ("-": none)
#   packages   packages (sockets) hwloc must report
#   dist       "src:dst:val" for src < dst
#   tiny       the small node the bind/preferred exhaustion tests use, or -1
#   cpuset_cpus, cpuset_mems   if set, a cgroup v2 cpuset some checks are repeated in
scenario_define() {
  tiny=-1
  cpuset_cpus=""
  cpuset_mems=""
  case "$1" in
    two-nodes)
      # 2 nodes in 1 package, distance 11.
      smp="2,sockets=1,cores=2,threads=1"
      node_mem=(512 512)
      node_cpus=(0 1)
      node_pkg=(0 0)
      packages=1
      dist=(0:1:11)
      ;;
    two-packages)
      # 2 packages x 2 nodes: 11 within a package, 21 across.
      smp="4,sockets=2,cores=2,threads=1"
      node_mem=(512 512 512 512)
      node_cpus=(0 1 2 3)
      node_pkg=(0 0 1 1)
      packages=2
      dist=(0:1:11 0:2:21 0:3:21 1:2:21 1:3:21 2:3:11)
      # Also run in a cgroup cpuset of one node per package: only nodes 0 and 2 may count.
      cpuset_cpus="0,2"
      cpuset_mems="0,2"
      ;;
    tiny-node)
      # 4 nodes, node 1 has 64 MiB: bind must throw std::bad_alloc, preferred must spill.
      smp="4,sockets=1,cores=4,threads=1"
      node_mem=(512 64 512 512)
      node_cpus=(0 1 2 3)
      node_pkg=(0 0 0 0)
      packages=1
      dist=(0:1:21 0:2:21 0:3:21 1:2:21 1:3:21 2:3:21)
      tiny=1
      ;;
    odd-nodes)
      # A memory-less node 1 whose cpu 2 belongs (for numamap) to node 2 at distance 11, and a
      # CPU-less node 3 (far memory, in no package): numamap counts nodes 0, 2, 3.
      smp="4,sockets=2,cores=2,threads=1"
      node_mem=(512 0 384 256)
      node_cpus=(0-1 2 3 "")
      node_pkg=(0 1 1 -)
      packages=2
      dist=(0:1:21 0:2:21 0:3:31 1:2:11 1:3:31 2:3:31)
      ;;
    *) die "unknown scenario '$1' (known: ${all_scenarios[*]})" ;;
  esac
}

# The QEMU arguments of the current scenario, into the array qemu_numa.
scenario_qemu_args() {
  local total=0 i
  qemu_numa=(-smp "$smp")
  for i in "${!node_mem[@]}"; do
    total=$((total + node_mem[i]))
    local node="node,nodeid=$i"
    [ -z "${node_cpus[i]}" ] || node+=",cpus=${node_cpus[i]}"
    if [ "${node_mem[i]}" -gt 0 ]; then
      qemu_numa+=(-object "memory-backend-ram,id=m$i,size=${node_mem[i]}M")
      node+=",memdev=m$i"
    fi
    qemu_numa+=(-numa "$node")
  done
  local d s t v
  for d in "${dist[@]}"; do
    IFS=: read -r s t v <<<"$d"
    qemu_numa+=(-numa "dist,src=$s,dst=$t,val=$v")
  done
  qemu_numa=(-m "${total}M" "${qemu_numa[@]}")
}

# The layout the guest must find, as the test program's arguments (kernel command line after --).
scenario_guest_args() {
  local n=${#node_mem[@]} i j d s t v matrix="" cpus="" mem="" pkgs=""
  declare -A dd=()
  for d in "${dist[@]}"; do
    IFS=: read -r s t v <<<"$d"
    dd[$s,$t]=$v
    dd[$t,$s]=$v
  done
  for ((i = 0; i < n; i++)); do
    for ((j = 0; j < n; j++)); do
      if [ "$i" -eq "$j" ]; then v=10; else v="${dd[$i,$j]:-20}"; fi
      matrix+="${matrix:+,}$v"
    done
    cpus+="${cpus:+/}${node_cpus[i]}"
    mem+="${mem:+,}${node_mem[i]}"
    pkgs+="${pkgs:+,}${node_pkg[i]}"
  done
  guest_args=(--scenario "$1" --nodes "$n" --packages "$packages" --node-cpus "$cpus"
              --node-packages "$pkgs" --node-mem-mib "$mem" --distances "$matrix" --tiny-node "$tiny"
              --entries "$entries")
  if [ -n "$cpuset_cpus" ]; then
    guest_args+=(--cpuset-cpus "$cpuset_cpus" --cpuset-mems "$cpuset_mems")
  fi
}

if [ "$list_only" -eq 1 ]; then
  for s in "${all_scenarios[@]}"; do
    scenario_define "$s"
    scenario_qemu_args
    scenario_guest_args "$s"
    echo "$s:"
    echo "  qemu:  ${qemu_numa[*]}"
    echo "  guest: ${guest_args[*]}"
  done
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The guest kernel: NUMAMAP_VM_KERNEL, or the package that Debian's linux-image-cloud-amd64
# depends on (CONFIG_NUMA=y, CONFIG_ACPI_NUMA=y, small), fetched with apt-get download and
# unpacked with dpkg -x into the cache. No glob: the package name gives the file name.
kernel=""
ensure_kernel() {
  if [ -n "${NUMAMAP_VM_KERNEL:-}" ]; then
    [ -r "$NUMAMAP_VM_KERNEL" ] || die "NUMAMAP_VM_KERNEL=$NUMAMAP_VM_KERNEL is not a readable file"
    kernel="$NUMAMAP_VM_KERNEL"
    return
  fi
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9  # ctest -j: one fetch at a time, the others then find the kernel in the cache
  local pkg=""
  if command -v apt-cache >/dev/null 2>&1; then
    pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1)"
    if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ] && [ ! -r "$cache/kernel.path" ]; then
      note "apt-cache does not know linux-image-cloud-amd64; running apt-get update"
      apt-get update -qq >&2 || true
      pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
             sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1)"
    fi
  fi
  if [ -z "$pkg" ]; then
    # Offline or not Debian: a kernel fetched earlier will do.
    if [ -r "$cache/kernel.path" ] && [ -r "$(cat "$cache/kernel.path")" ]; then
      kernel="$(cat "$cache/kernel.path")"
      note "apt cannot name the cloud kernel package; using the cached $kernel"
      flock -u 9
      return
    fi
    die "no guest kernel: apt-cache cannot name the package linux-image-cloud-amd64 depends on
  (not Debian, or no apt lists: run 'apt-get update'). Set NUMAMAP_VM_KERNEL to a bzImage
  built with CONFIG_NUMA=y and CONFIG_ACPI_NUMA=y, or install the apt lists."
  fi
  local version="${pkg#linux-image-}"
  local dir="$cache/$pkg"
  local image="$dir/boot/vmlinuz-$version"
  if [ ! -r "$image" ]; then
    note "fetching $pkg (apt-get download) into $cache"
    rm -rf "$dir" "$cache/download"
    mkdir -p "$cache/download"
    (cd "$cache/download" && apt-get download "$pkg" >&2) ||
      die "apt-get download $pkg failed (no network to the Debian mirror?). Set NUMAMAP_VM_KERNEL to use another kernel."
    local deb
    deb="$(find "$cache/download" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)"
    [ -n "$deb" ] || die "apt-get download $pkg left no ${pkg}_*.deb in $cache/download"
    rm -rf "$dir.tmp"
    dpkg -x "$deb" "$dir.tmp" || die "dpkg -x $deb failed"
    # Only the kernel image is used (no modules: the initramfs needs none); keep the
    # config for whoever wonders whether CONFIG_NUMA is set.
    rm -rf "$dir.tmp/lib" "$dir.tmp/usr"
    mv "$dir.tmp" "$dir"
    rm -rf "$cache/download"
    [ -r "$image" ] || die "$deb holds no boot/vmlinuz-$version"
  fi
  kernel="$image"
  echo "$kernel" >"$cache/kernel.path"
  flock -u 9
}

ensure_kernel
note "guest kernel: $kernel"
[ "$fetch_only" -eq 1 ] && exit 0

# ---------------------------------------------------------------------------------------------
[ ${#scenarios[@]} -gt 0 ] || die "no scenario given (known: ${all_scenarios[*]}, or all)"
[ -n "$guest" ] || die "--guest BIN (the in-guest test program) is required"
[ -x "$guest" ] || die "guest program $guest is missing or not executable (build numa_vm_guest)"
[ -n "$work" ] || work="$(dirname "$guest")/numa-vm-work"

qemu="${NUMAMAP_VM_QEMU:-qemu-system-x86_64}"
command -v "$qemu" >/dev/null 2>&1 ||
  die "$qemu not found: install qemu-system-x86 (Debian: apt-get install qemu-system-x86)"
busybox="${NUMAMAP_VM_BUSYBOX:-}"
if [ -z "$busybox" ]; then
  for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox="$b"; break; fi
  done
fi
[ -n "$busybox" ] && [ -x "$busybox" ] ||
  die "no static busybox: install busybox-static (Debian: apt-get install busybox-static) or set NUMAMAP_VM_BUSYBOX"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked; the guest needs busybox-static"
command -v cpio >/dev/null 2>&1 || die "cpio not found: install cpio"

# The initramfs: busybox, /init, the test program at /numa-vm-guest, and every library ldd
# lists (for the program, and for the hwloc and libnuma it loads at run time) plus the
# dynamic loader, at the same paths. Uncompressed: TCG is slow at gunzip.
build_initramfs() {
  local out="$1" root="$1.root"
  rm -rf "$root"
  mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
  cp "$busybox" "$root/bin/busybox"
  cp "$here/init.sh" "$root/init"
  chmod 755 "$root/init" "$root/bin/busybox"
  cp "$guest" "$root/numa-vm-guest"
  local libs lib dl
  libs="$(ldd "$guest")" || die "ldd $guest failed"
  # numamap loads hwloc and libnuma with dlopen (decisions.md D46): ldd of the program does
  # not list them. Add them, and what they need, where this machine has them.
  for dl in libhwloc.so.15 libnuma.so.1; do
    lib="$(ldconfig -p 2>/dev/null | awk -v n="$dl" '$1 == n && /x86-64/ { print $NF; exit }')"
    [ -n "$lib" ] || continue
    libs+=$'\n'"$dl => $lib (0x0)"$'\n'"$(ldd "$lib")" || die "ldd $lib failed"
  done
  if grep -q "not found" <<<"$libs"; then
    die "ldd $guest: a library is not found:
$libs"
  fi
  # "libx.so => /path/libx.so (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for lib in $(awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }' <<<"$libs"); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$root"
}

run_scenario() {
  local name="$1"
  scenario_define "$name"
  scenario_qemu_args
  scenario_guest_args "$name"
  local dir="$work/$name"
  mkdir -p "$dir"
  build_initramfs "$dir/initramfs.cpio"
  local log="$dir/console.log"
  # nokaslr: the kernel's image then stays at its link address (16 MiB, in node 0). With
  # KASLR it landed anywhere, once in about ten boots in tiny-node's 64 MiB node 1, which then
  # had 30 MiB left: under the half of its size that the topology checks allow for what the
  # kernel keeps of each node.
  local cmd=("$qemu" -accel tcg,thread=multi -cpu max -nographic -no-reboot -nodefaults
             -no-user-config -serial stdio -net none
             "${qemu_numa[@]}"
             -kernel "$kernel" -initrd "$dir/initramfs.cpio"
             -append "console=ttyS0 panic=-1 loglevel=3 nokaslr -- ${guest_args[*]}")
  note "scenario $name: ${qemu_numa[*]}"
  note "guest args: ${guest_args[*]}"
  local start=$SECONDS rc=0
  timeout -k 10 "$vm_timeout" "${cmd[@]}" </dev/null >"$log.raw" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  # Serial console: CR LF line ends and the firmware's terminal escapes.
  tr -d '\r' <"$log.raw" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >"$log"
  rm -f "$log.raw"
  echo "----- guest console ($name) -----"
  cat "$log"
  echo "----- end of guest console ($name) -----"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "numa-vm: FAIL: $name: the guest did not finish within ${vm_timeout}s (raise NUMAMAP_VM_TIMEOUT or lower NUMAMAP_VM_ENTRIES)"
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "numa-vm: FAIL: $name: $qemu exited with status $rc"
    return 1
  fi
  local status
  status="$(sed -n 's/^NUMA-VM-EXIT-STATUS: \([0-9]*\)$/\1/p' "$log" | tail -n 1)"
  if [ -z "$status" ]; then
    echo "numa-vm: FAIL: $name: the guest printed no exit status (crashed, panicked or never started the test)"
    return 1
  fi
  if ! grep -qx "NUMA-VM-DONE" "$log"; then
    echo "numa-vm: FAIL: $name: the guest printed no done marker"
    return 1
  fi
  if [ "$status" -ne 0 ]; then
    echo "numa-vm: FAIL: $name: the test program exited with status $status"
    return 1
  fi
  local summary
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)"
  if [ -z "$summary" ] || ! grep -qE '^[1-9][0-9]* passed, 0 failed$' <<<"$summary"; then
    echo "numa-vm: FAIL: $name: no 'N passed, 0 failed' summary with N > 0 (got '${summary}')"
    return 1
  fi
  echo "numa-vm: PASS: $name: $summary (${took}s)"
}

failed=0
for s in "${scenarios[@]}"; do
  run_scenario "$s" || failed=1
done
exit "$failed"
