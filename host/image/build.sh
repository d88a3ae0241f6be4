#!/usr/bin/env bash
# `make image`: builds the Airbyte source image with podman from the release host and component.
# Installs podman and runc with apt-get when they are missing (root only), stages a FROM-scratch
# rootfs under target/image (host, component, the shared libraries `ldd` lists, a precompiled
# component), builds, and prints the image's name and size.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CONTAINERS_CONF="$root/host/image/containers.conf"
host="$root/target/release/source-instagram-host"
component="$root/target/guests/wasm32-wasip2/release/instagram_connector.wasm"
repository="$(sed -n 's/^  dockerRepository: //p' "$root/host/image/metadata.yaml")"
tag="$(sed -n 's/^  dockerImageTag: //p' "$root/host/image/metadata.yaml")"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  [[ $(id -u) == 0 ]] || { echo "image: podman and runc are needed (apt-get install podman runc)" >&2; exit 1; }
  echo "== installing podman and runc"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
fi

stage="$root/target/image"
rm -rf "$stage"
mkdir -p "$stage/rootfs/cache"
cp "$host" "$component" "$stage/rootfs/"
# The host links glibc dynamically: copy each library to the path the loader will look at.
ldd "$host" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$stage/rootfs$(dirname "$lib")"
  cp -L "$lib" "$stage/rootfs$lib"
done
# A precompiled component in the image's cache: `spec` starts in milliseconds, not a second.
"$host" "$component" --cache-dir "$stage/rootfs/cache" spec >/dev/null
cp "$root/host/image/Containerfile" "$stage/"

podman build --quiet --tag "$repository:$tag" "$stage" >/dev/null
size="$(podman image inspect "$repository:$tag" --format '{{.Size}}')"
echo "== built $repository:$tag ($((size / 1024 / 1024)) MiB)"
