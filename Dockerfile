# syntax=docker/dockerfile:1
# portkey-guard: built with the Rust toolchain on the build machine's own
# platform (cross-compiling for the target, never emulating it), run on a
# minimal non-root base.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg REVISION="$(git rev-parse HEAD)" -t ghcr.io/pc-tips/portkey-guard:0.1.0 .
#
# Base images are pinned by the digest of their multi-platform index, so
# each platform resolves to the same published build every time:
# * rust:1.89.0-bookworm: the index digest docker-library/repo-info records
#   for that tag (repos/rust/remote/1.89.0-bookworm.md).
# * gcr.io/distroless/cc-debian12:nonroot: distroless publishes no digest
#   list; this is the digest public Dockerfiles pin for that tag. Check it
#   before relying on it:
#     crane digest gcr.io/distroless/cc-debian12:nonroot
#     cosign verify gcr.io/distroless/cc-debian12:nonroot@sha256:... \
#       --certificate-oidc-issuer https://accounts.google.com \
#       --certificate-identity keyless@distroless.iam.gserviceaccount.com
ARG RUST_IMAGE=docker.io/library/rust:1.89.0-bookworm@sha256:16790a8f2ee07e21ad2d3b2216af070ea4ee41b42b8cca5b40ab5f1e2f19e884
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The target's triple, and for a foreign target its C cross compiler (ring
# compiles C and assembly) and linker; written to /cross.env for later steps.
# hadolint ignore=DL3008
RUN case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; gnu=x86_64-linux-gnu; deb=amd64 ;; \
      arm64) triple=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; deb=arm64 ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    echo "export RUST_TARGET=$triple" > /cross.env; \
    echo "export STRIP=strip" >> /cross.env; \
    if [ "$deb" != "$(dpkg --print-architecture)" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "gcc-${gnu//_/-}" "libc6-dev-${deb}-cross"; \
      rm -rf /var/lib/apt/lists/*; \
      env_triple=${triple//-/_}; \
      { echo "export CARGO_TARGET_${env_triple^^}_LINKER=${gnu}-gcc"; \
        echo "export CC_${env_triple}=${gnu}-gcc"; \
        echo "export AR_${env_triple}=${gnu}-ar"; \
        echo "export STRIP=${gnu}-strip"; } >> /cross.env; \
    fi; \
    rustup target add "$triple"

# Dependencies first, in a layer of their own: the workspace's manifests
# and lock file with empty targets. It is rebuilt only when Cargo.toml,
# Cargo.lock or a member's manifest changes, not on a source change.
# Cargo reads every member's manifest and refuses one whose declared
# targets are missing, so each declared [[test]] and [[bench]] gets an
# empty file too. Those stay: tests/ and the benches are not in the build
# context (.dockerignore), and the real build reads the same manifests.
COPY Cargo.toml Cargo.lock ./
COPY bench/decide/Cargo.toml bench/decide/Cargo.toml
RUN mkdir -p src tests bench/decide/src bench/decide/benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs tests/cases.rs \
       bench/decide/src/lib.rs bench/decide/benches/decide.rs \
       bench/decide/benches/peers.rs bench/decide/benches/allocations.rs \
    && . /cross.env \
    && cargo build --locked --release --target "$RUST_TARGET" \
    && rm -rf src

# The sources. The same command as CI's build (scripts/test.sh: cargo
# build --locked --release), for the target platform. The sources are
# touched so cargo does not take the empty targets' build for theirs.
COPY src src
COPY policy policy
RUN touch src/main.rs src/lib.rs \
    && . /cross.env \
    && cargo build --locked --release --target "$RUST_TARGET" \
    && "$STRIP" "target/$RUST_TARGET/release/portkey-guard" \
    && cp "target/$RUST_TARGET/release/portkey-guard" /portkey-guard

# glibc, CA certificates and nothing else: no shell, no package manager.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="portkey-guard" \
      org.opencontainers.image.description="Admission webhook that enforces the Portkey AI Gateway deployment policy" \
      org.opencontainers.image.source="https://github.com/pc-tips/portkey-guard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /portkey-guard /usr/local/bin/portkey-guard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portkey-guard"]
CMD ["serve"]
