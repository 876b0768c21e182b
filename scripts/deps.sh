#!/usr/bin/env bash
# The one place that knows which Debian packages each layer of the project needs.
#
#   scripts/deps.sh LAYER...     install what LAYER needs when it is missing (as root)
#   scripts/deps.sh --list LAYER print the packages of LAYER
#
# Layers:
#   build     what `cargo build` of the whole workspace needs
#   vmgate    vmgate's end-to-end tests: the kernel's nftables, sudo/visudo, users, netns
#   klang     klang's file tests and the benchmark against sox
#   pipewire  a headless PipeWire graph for klang's live tests
#   spice     a real QEMU Spice server and remote-viewer under Xvfb
#   browser   headless Chromium for the remote page's tests
#   bench     the benchmark scripts' timing tools
#   test      every layer the README's test command needs
set -euo pipefail

packages_of() {
  case "$1" in
    # klang-live links libpipewire through bindgen, so the workspace build needs the headers and libclang.
    build)    echo "build-essential pkg-config libpipewire-0.3-dev libspa-0.2-dev libclang-dev clang" ;;
    vmgate)   echo "nftables sudo iproute2 util-linux passwd procps kmod socat hello systemd" ;;
    klang)    echo "sox" ;;
    pipewire) echo "pipewire pipewire-bin wireplumber pipewire-pulse dbus pulseaudio-utils coreutils passwd" ;;
    # qemu-system-* come from bookworm-backports, the suite of the machine's qemu-utils (see below).
    spice)    echo "qemu-system-x86 qemu-system-modules-spice virt-viewer xvfb x11-apps openssl netpbm" ;;
    browser)  echo "chromium chromium-driver" ;;
    bench)    echo "sox time hyperfine" ;;
    test)     echo "$(packages_of build) $(packages_of vmgate) $(packages_of klang) $(packages_of pipewire) $(packages_of spice) $(packages_of browser)" ;;
    *) echo "deps.sh: unknown layer '$1' (build, vmgate, klang, pipewire, spice, browser, bench, test)" >&2; return 2 ;;
  esac
}

if [ "${1:-}" = "--list" ]; then
  shift
  for layer in "$@"; do packages_of "$layer"; done | tr ' ' '\n' | sed '/^$/d' | sort -u
  exit 0
fi

wanted=$(for layer in "$@"; do packages_of "$layer"; done | tr ' ' '\n' | sed '/^$/d' | sort -u)
missing=()
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# QEMU must come from the same suite as the preinstalled qemu-utils (bookworm-backports). The
# suite is added for this install only, through a private sources directory and list cache; the
# machine's own apt sources are never changed.
backports=()
rest=()
for pkg in "${missing[@]}"; do
  case "$pkg" in qemu-system-*) backports+=("$pkg") ;; *) rest+=("$pkg") ;; esac
done
if [ ${#backports[@]} -gt 0 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/parts" "$tmp/lists/partial"
  cp /etc/apt/sources.list.d/*.sources "$tmp/parts/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$tmp/parts/main.list"
  cat > "$tmp/parts/vmgate-backports.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_bpo=(-o APT::Sandbox::User=root -o Dir::Etc::SourceParts="$tmp/parts" -o Dir::Etc::SourceList=/dev/null -o Dir::State::Lists="$tmp/lists")
  apt-get "${apt_bpo[@]}" update -qq
  apt-get "${apt_bpo[@]}" install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null
fi
[ ${#rest[@]} -gt 0 ] && apt-get install -y -qq --no-install-recommends "${rest[@]}" >/dev/null
exit 0
