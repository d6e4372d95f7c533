# syntax=docker/dockerfile:1.7
#
# The `znovel` image: one binary, every role (`znovel serve --role <role>`, `znovel
# migrate`, ...). Kubernetes runs each service of k8s/ from this same image.
#
#   docker build -t ghcr.io/z-novel/znovel:$(git rev-parse --short HEAD) .
#
# No model is baked in: in a cluster the model is a provider (LLM_BASE_URL); the embedded
# model, when wanted, is a GGUF file on a volume (ZNOVEL_MODEL_PATH, by default under
# ZNOVEL_DATA_DIR=/var/lib/znovel). Runs as uid 10001 with a read-only root filesystem
# in mind: it writes only to ZNOVEL_DATA_DIR and /tmp (both volumes in k8s/).

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# --- build ---------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# llama.cpp (the embedded model, feature `local-llm`, on by default) builds with CMake and
# bindgen (clang + libclang). Debian's versions (not pinned: bookworm only takes fixes).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .cargo/config.toml carries the GGML_* build settings (x86-64-v3 SIMD level for
# llama.cpp) and the bundled SQLite's flags; .dockerignore keeps the context to what the
# build reads.
COPY . .

# The registry and target caches survive between builds (BuildKit); the binary is copied
# out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin znovel \
 && install -D -m 0755 target/release/znovel /out/znovel \
 && /out/znovel print-metrics >/dev/null

# --- run -----------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to the model provider and managed databases. libstdc++6/libgcc-s1:
# llama.cpp is C++ (both are already in the slim image; named so that stays true).
# libgomp1: the embedded embedder's engine (`libe5.so`, built with OpenMP by
# scripts/fetch-models.sh and mounted with its weights at ZNOVEL_EMBEDDING_MODEL_DIR).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 znovel \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/znovel --no-create-home \
      --shell /usr/sbin/nologin znovel \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/znovel

COPY --from=builder /out/znovel /usr/local/bin/znovel

ENV ZNOVEL_DATA_DIR=/var/lib/znovel \
    ZNOVEL_LISTEN=0.0.0.0:8080 \
    ZNOVEL_METRICS_LISTEN=0.0.0.0:9090 \
    ZNOVEL_LOG_FORMAT=json

USER 10001:10001
WORKDIR /var/lib/znovel
VOLUME ["/var/lib/znovel"]
# 8080: GraphQL (HTTP + WebSocket), /health, /ready. 9090: Prometheus /metrics.
EXPOSE 8080 9090

ENTRYPOINT ["/usr/local/bin/znovel"]
CMD ["serve"]
