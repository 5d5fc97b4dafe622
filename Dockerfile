# Portcullis: multi-stage build, slim non-root runtime.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY config config
COPY auth auth
COPY server server
COPY testkit testkit
COPY tests tests
COPY bench bench
RUN cargo build --release --locked -p portcullis-server --bin portcullis

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/portcullis --create-home portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER 10001
ENV PORTCULLIS_HTTP_ADDR=0.0.0.0:8080 \
    PROMETHEUS_MONITORING_PORT=2112 \
    PERSISTENCE_DATA_PATH=/var/lib/portcullis/data \
    LOG_FORMAT=json
VOLUME ["/var/lib/portcullis"]
EXPOSE 8080 2112
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/portcullis", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
