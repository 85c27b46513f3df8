# Multi-stage: build with the Rust toolchain, run on a minimal non-root base.
FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY policy policy
# A workspace member: cargo needs its manifest, and builds none of it.
COPY bench/decide bench/decide
RUN cargo build --release --locked && strip target/release/portkey-guard

# glibc, CA certificates and nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/portkey-guard /usr/local/bin/portkey-guard
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portkey-guard"]
CMD ["serve"]
