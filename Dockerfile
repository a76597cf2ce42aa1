# syntax=docker/dockerfile:1.7
# One image for every role: `pyairtable router`, `pyairtable subgraph auth`, `pyairtable migrate`...
#
#   docker build -t pyairtable .
#   docker run --rm pyairtable --help
#
# Stages: chef (cargo-chef), planner (the dependency recipe), build (dependencies first, cached
# until Cargo.lock or a manifest changes; then our crates), runtime (distroless, non-root).

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
WORKDIR /src
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
# Dependencies only: this layer is reused until Cargo.lock or a Cargo.toml changes.
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,id=pyairtable-cargo-registry,target=/usr/local/cargo/registry \
    cargo chef cook --release --locked --recipe-path recipe.json
# Our crates. Migrations, the policy and the password list are compiled into the binary.
COPY . .
RUN --mount=type=cache,id=pyairtable-cargo-registry,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin pyairtable \
    && install -D -m 0755 target/release/pyairtable /out/usr/local/bin/pyairtable \
    && install -D -m 0644 -t /out/usr/share/pyairtable/schema schema/*.graphql

# glibc, libgcc, CA certificates and a `nonroot` user (65532); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/ /
ENV PYAIRTABLE_LISTEN=0.0.0.0:4000 \
    PYAIRTABLE_DATA_DIR=/tmp/pyairtable \
    PYAIRTABLE_LOG_FORMAT=json
USER 65532:65532
EXPOSE 4000
# Every role serves /readyz; `healthcheck` asks it (there is no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/pyairtable", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pyairtable"]
CMD ["--help"]
