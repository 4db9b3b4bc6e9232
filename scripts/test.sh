#!/usr/bin/env bash
# scripts/test.sh — install what numamap's tests need and run every test configuration.
#
# Usage: scripts/test.sh [--quick] [--no-install] [--keep-going|--fail-fast] [CONFIG...]
#   CONFIG     one or more of: dev asan-ubsan tsan clang no-deps   (default: all five)
#   --quick    the plain gcc build only (same as `scripts/test.sh dev`)
#   --no-install   do not check or install Debian packages
#   --fail-fast    stop at the first configuration that fails (default: run all, then fail)
#
# Each configuration is a CMake preset (CMakePresets.json), built in build/<config>:
#   dev         gcc -O2 (assertions on), hwloc + libnuma: all tests, the consumer builds,
#               the QEMU multi-node tests (label numa-vm), benchmark smoke runs (bench-smoke)
#   asan-ubsan  gcc -O1, AddressSanitizer + UBSan + LeakSanitizer; [no-asan] tests excluded
#   tsan        gcc -O1, ThreadSanitizer; [no-tsan] tests excluded
#   clang       clang -O2 as C++20, with the consumer builds
#   no-deps     gcc -O2 with NUMAMAP_WITH_HWLOC=OFF and NUMAMAP_WITH_LIBNUMA=OFF
# Sanitizer builds skip the numa-vm, consumer and bench-smoke labels.
#
# Environment: NUMAMAP_STRESS_SCALE (default 1) scales the stress tests; CTEST_JOBS and
# BUILD_JOBS override the parallelism (default: the number of cpus).
# The last line is `N passed, N failed`, summed over the CTest runs of all configurations (a
# configuration that fails to configure or build counts as one failure).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

ALL_CONFIGS=(dev asan-ubsan tsan clang no-deps)
configs=()
install=1
fail_fast=0
while (($#)); do
  case "$1" in
    --quick) configs=(dev) ;;
    --no-install) install=0 ;;
    --fail-fast) fail_fast=1 ;;
    --keep-going) fail_fast=0 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "test.sh: unknown option $1 (see --help)" >&2
      exit 2
      ;;
    *)
      if [[ " ${ALL_CONFIGS[*]} " != *" $1 "* ]]; then
        echo "test.sh: unknown configuration '$1'; known: ${ALL_CONFIGS[*]}" >&2
        exit 2
      fi
      configs+=("$1")
      ;;
  esac
  shift
done
((${#configs[@]})) || configs=("${ALL_CONFIGS[@]}")

log() { printf '\n==> %s\n' "$*"; }

# ---- Debian packages ---------------------------------------------------------------------------

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang lld libclang-rt-14-dev
  libhwloc-dev hwloc libnuma-dev numactl catch2 libbenchmark-dev
  libtbb-dev libcuckoo-dev libabsl-dev
  qemu-system-x86 busybox-static cpio python3 python3-matplotlib valgrind
)

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages: all ${#PACKAGES[@]} present"
    return
  fi
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || {
      echo "test.sh: not root and no sudo; install: ${missing[*]}" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  log "Debian packages: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

if ((install)); then
  if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
    install_packages
  else
    log "not a Debian system: install the equivalents of ${PACKAGES[*]} yourself"
  fi
fi

NPROC=$(nproc 2>/dev/null || echo 2)
CTEST_JOBS=${CTEST_JOBS:-$NPROC}
BUILD_JOBS=${BUILD_JOBS:-}
export NUMAMAP_STRESS_SCALE=${NUMAMAP_STRESS_SCALE:-1}

# ---- ThreadSanitizer and ASLR ------------------------------------------------------------------

# TSan in gcc 12 / clang 14 maps its shadow at fixed addresses; kernels with a large mmap
# randomisation (vm.mmap_rnd_bits = 32, default on some 6.x kernels) can place the binary where
# TSan dies with "FATAL: ThreadSanitizer: unexpected memory mapping". Probe with a tiny TSan
# program; if it fails and works with ASLR off, run the TSan tests under `setarch -R`.
tsan_wrapper=()
probe_tsan() {
  local dir rc
  dir=$(mktemp -d)
  cat >"$dir/probe.cpp" <<'EOF'
#include <thread>
int shared_value = 0;
int main() {
  std::thread t([] { shared_value = 1; });
  t.join();
  return shared_value == 1 ? 0 : 1;
}
EOF
  if ! g++ -fsanitize=thread -O1 -g "$dir/probe.cpp" -o "$dir/probe" 2>"$dir/err"; then
    cat "$dir/err" >&2
    rm -rf "$dir"
    echo "test.sh: cannot build a ThreadSanitizer program" >&2
    return 1
  fi
  rc=0
  for _ in 1 2 3 4 5; do "$dir/probe" >/dev/null 2>"$dir/err" || { rc=1; break; }; done
  if ((rc == 0)); then
    log "TSan probe: runs with ASLR on (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?'))"
  elif setarch "$(uname -m)" -R "$dir/probe" 2>/dev/null; then
    log "TSan probe: failed with ASLR on ($(head -c 200 "$dir/err")); running TSan tests under setarch -R"
    tsan_wrapper=(setarch "$(uname -m)" -R)
  else
    cat "$dir/err" >&2
    rm -rf "$dir"
    echo "test.sh: a ThreadSanitizer program fails even with ASLR off" >&2
    return 1
  fi
  rm -rf "$dir"
}

# ---- The configurations ------------------------------------------------------------------------

total_passed=0
total_failed=0
declare -A cfg_time cfg_result
any_failed=0

run_config() {
  local name=$1 start end rc=0 out summary passed=0 failed=0 total
  local wrapper=()
  start=$(date +%s)
  log "[$name] configure (preset $name, build/$name)"
  if ! cmake --preset "$name" -DNUMAMAP_STRESS_SCALE="$NUMAMAP_STRESS_SCALE"; then
    cfg_result[$name]="configure FAILED"
    total_failed=$((total_failed + 1))
    return 1
  fi
  log "[$name] build"
  local build_args=()
  [[ -n $BUILD_JOBS ]] && build_args=(--parallel "$BUILD_JOBS")
  if ! cmake --build --preset "$name" "${build_args[@]}"; then
    cfg_result[$name]="build FAILED"
    total_failed=$((total_failed + 1))
    return 1
  fi
  if [[ $name == tsan ]]; then
    probe_tsan || {
      cfg_result[$name]="TSan unusable on this machine"
      total_failed=$((total_failed + 1))
      return 1
    }
    wrapper=("${tsan_wrapper[@]}")
  fi
  log "[$name] test"
  out="build/$name/ctest-output.log"
  set +e
  "${wrapper[@]}" ctest --preset "$name" -j "$CTEST_JOBS" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  # CTest's summary: "97% tests passed, 1 tests failed out of 40".
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -1 || true)
  if [[ -n $summary ]]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
    passed=$((total - failed))
  elif ((rc != 0)); then
    failed=1 # ctest itself failed (e.g. no tests found)
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  end=$(date +%s)
  if ((rc != 0 || failed != 0)); then
    cfg_result[$name]="$passed passed, $failed failed (ctest exit $rc)"
    return 1
  fi
  cfg_result[$name]="$passed passed, 0 failed"
  return 0
}

overall_start=$(date +%s)
log "configurations: ${configs[*]} (NUMAMAP_STRESS_SCALE=$NUMAMAP_STRESS_SCALE, ctest -j $CTEST_JOBS)"
for c in "${configs[@]}"; do
  t0=$(date +%s)
  if run_config "$c"; then :; else
    any_failed=1
  fi
  cfg_time[$c]=$(($(date +%s) - t0))
  log "[$c] ${cfg_result[$c]:-} in ${cfg_time[$c]}s"
  if ((any_failed && fail_fast)); then
    break
  fi
done
overall=$(($(date +%s) - overall_start))

# Formatting is reported, not enforced here: `scripts/format.sh --check` lists the files.
format_note=""
if command -v clang-format >/dev/null && [[ -d .git ]]; then
  unformatted=$(scripts/format.sh --check 2>/dev/null | grep -c '^not formatted' || true)
  if ((unformatted)); then
    format_note="$unformatted C++ files are not clang-formatted (scripts/format.sh --check)"
  fi
fi

log "summary"
for c in "${configs[@]}"; do
  [[ -n ${cfg_time[$c]:-} ]] || continue
  printf '  %-11s %4ds  %s\n' "$c" "${cfg_time[$c]}" "${cfg_result[$c]}"
done
printf '  %-11s %4ds\n' total "$overall"
[[ -z $format_note ]] || echo "  note: $format_note"
echo "$total_passed passed, $total_failed failed"
if ((any_failed || total_failed)); then
  exit 1
fi
