# syntax=docker/dockerfile:1
# The docketops image: the binary on distroless (glibc, CA certificates, no shell), running as uid 65532.
#   docker build -t ghcr.io/docketops/ledger:0.1.0 .
#   docker run -p 8443:8443 -v docketops:/var/lib/docketops ghcr.io/docketops/ledger:0.1.0
# Everything the binary needs at run time (the default Rego policy, the migrations, the dashboard's assets)
# is compiled into it. The Helm chart (charts/docketops-ledger) replaces CMD with its own arguments.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# Cache mounts keep the registry and the build between image builds; the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p docketops \
    && install -D -m 0755 target/release/docketops /out/docketops \
    && mkdir -p -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/docketops /usr/local/bin/docketops
# The working directory holds the default data directory (./docketops-data: SQLite ledger, signing key),
# so `serve`, `verify` and `export` run in the container agree on it; mount a volume here to keep it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/docketops
WORKDIR /var/lib/docketops
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["docketops"]
CMD ["serve", "--listen", "0.0.0.0:8443"]
