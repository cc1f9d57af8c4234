#!/usr/bin/env bash
# Install the Fashion-MNIST IDX files offline, from Debian's `dataset-fashion-mnist` package.
#
# Usage: scripts/install_fashion_mnist.sh [DATA_DIR]
#
# As root: `apt-get install -y dataset-fashion-mnist` (running `apt-get update` first only when
# the package is unknown), which puts the files in /usr/share/datasets/fashion-mnist/.
# Otherwise: `apt-get download` + `dpkg-deb -x`, and the four files go to DATA_DIR/fashion-mnist/
# (DATA_DIR defaults to <repo>/data), where `cgmvae.data.fashion_mnist` also looks.
# Idempotent: it returns at once when the files are already in either place.
set -euo pipefail

PACKAGE=dataset-fashion-mnist
SYSTEM_DIR=/usr/share/datasets/fashion-mnist
DATA_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/data}"
LOCAL_DIR="$DATA_DIR/fashion-mnist"
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

has_all_files() {
    local dir=$1 name
    for name in "${FILES[@]}"; do
        [[ -s "$dir/$name" ]] || return 1
    done
}

for dir in "$SYSTEM_DIR" "$LOCAL_DIR"; do
    if has_all_files "$dir"; then
        echo "Fashion-MNIST already installed in $dir"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_fashion_mnist.sh: apt-get not found; not a Debian system." >&2
    echo "cgmvae.data.fashion_mnist() will download the files on first use instead." >&2
    exit 0
fi

package_known() {
    apt-cache show "$PACKAGE" >/dev/null 2>&1
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$PACKAGE" >/dev/null
}

if [[ "$(id -u)" -eq 0 ]]; then
    # Update the package lists only when needed: the package is unknown, or the lists are
    # stale and the install fails.
    if ! package_known; then
        apt-get update -qq
    fi
    if ! apt_install; then
        apt-get update -qq
        apt_install
    fi
    if ! has_all_files "$SYSTEM_DIR"; then
        echo "install_fashion_mnist.sh: $PACKAGE did not install the files in $SYSTEM_DIR" >&2
        exit 1
    fi
    echo "Fashion-MNIST installed in $SYSTEM_DIR"
    exit 0
fi

if ! package_known; then
    echo "install_fashion_mnist.sh: apt does not know $PACKAGE and only root can run" \
        "'apt-get update'. Run 'sudo apt-get update' (or this script as root) first." >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "$PACKAGE")
dpkg-deb -x "$tmp"/"$PACKAGE"_*.deb "$tmp/root"
mkdir -p "$LOCAL_DIR"
for name in "${FILES[@]}"; do
    cp "$tmp/root$SYSTEM_DIR/$name" "$LOCAL_DIR/$name"
done
echo "Fashion-MNIST installed in $LOCAL_DIR"
