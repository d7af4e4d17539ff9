# The `responses-pipe` server image. Build from the repository root:
#   docker build -t responses-pipe .
# The builder compiles the component for wasm32-wasip2 (host/build.rs embeds it in the binary)
# and then the host; the runtime image holds only the binary. The compiled-component cache is
# not warmed here: no command only compiles the component, so each host compiles it once on its
# first start into <data dir>/cache (a few seconds) and reuses it while /data is kept.

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p responses-pipe-host \
    && install -D -m 0755 target/release/responses-pipe /out/responses-pipe \
    && install -d -m 0700 /out/data

# distroless/cc: glibc and libgcc only, no shell; TLS roots are built into the binary.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/responses-pipe /usr/local/bin/responses-pipe
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["responses-pipe"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
