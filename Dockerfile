# syntax=docker/dockerfile:1
# opretail-exporter: multi-stage build, small non-root runtime image.
#   docker build -t opretail-exporter --build-arg REVISION=$(git rev-parse --short=12 HEAD) .
#   docker run --rm -p 9863:9863 opretail-exporter demo
#   docker run --rm -p 9863:9863 -v $PWD/opretail.yaml:/etc/opretail-exporter/config.yaml:ro \
#     -e OPRETAIL_APP_KEY -e OPRETAIL_APP_SECRET opretail-exporter
# TLS is rustls (webpki roots compiled in): the runtime needs no libssl and no CA bundle.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
# Cargo.toml names the benchmark target, so its file must exist for the manifest to load.
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
ARG REVISION=unknown
ENV OPRETAIL_EXPORTER_REVISION=${REVISION}
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin opretail-exporter \
 && install -D -m 0755 target/release/opretail-exporter /out/opretail-exporter

FROM debian:bookworm-slim
COPY --from=build /out/opretail-exporter /usr/local/bin/opretail-exporter
COPY config.example.yaml /etc/opretail-exporter/config.example.yaml
# 65532: the conventional unprivileged "nonroot" id; no home, no shell needed.
USER 65532:65532
EXPOSE 9863
# The binary asks /-/healthy itself: it finds out whether the port speaks TLS and counts a 401
# (basic auth on) as alive. It assumes the default port 9863 (pass --web.listen-address to it
# if you change the exporter's).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/opretail-exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/opretail-exporter"]
CMD ["--config", "/etc/opretail-exporter/config.yaml"]
