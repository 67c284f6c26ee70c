# rostersync in a container: the host binary, the six provider connectors
# and the SCIM target, running as an unprivileged user. Build from the
# repository's root:
#
#   docker build -t rostersync .
#   docker run -d -p 8080:8080 -v rostersync:/var/lib/rostersync \
#     -v /etc/rostersync/rostersync.toml:/etc/rostersync/rostersync.toml:ro \
#     --env-file /etc/rostersync/secrets.env rostersync
#
# The plugin folder sits in the state volume because the host keeps its
# compiled-code cache beside the plugins; `/healthz` on the admin port answers
# without a token, for an orchestrator's probe. Stage 1 compiles everything
# with the Rust toolchain; stage 2 carries only what runs.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
RUN cargo build --release --locked -p rostersync \
 && mkdir -p /out/plugins \
 && ./target/release/rostersync --plugin-dir /out/plugins connector build \
      connectors/wonde connectors/clever connectors/arbor \
      connectors/xporter connectors/scholarpack connectors/oneroster \
      connectors/scim \
 && cp target/release/rostersync /out/rostersync

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/rostersync --create-home --uid 10001 rostersync
COPY --from=build /out/rostersync /usr/local/bin/rostersync
COPY --from=build --chown=rostersync:rostersync /out/plugins /var/lib/rostersync/plugins
USER rostersync
WORKDIR /var/lib/rostersync
ENV ROSTERSYNC_CONFIG=/etc/rostersync/rostersync.toml \
    ROSTERSYNC_PLUGIN_DIR=/var/lib/rostersync/plugins
EXPOSE 8080
ENTRYPOINT ["rostersync"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
