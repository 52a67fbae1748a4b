# Multi-stage build of the amtsweg binary; the runtime image runs as an unprivileged user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p amtsweg-server -p amtsweg-payment --bin amtsweg --bin amtsweg-epaybl-sim

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/amtsweg --create-home amtsweg
COPY --from=build /src/target/release/amtsweg /src/target/release/amtsweg-epaybl-sim /usr/local/bin/
COPY procedures /etc/amtsweg/procedures
COPY workflows /etc/amtsweg/workflows
ENV AMTSWEG__SERVER__HOST=0.0.0.0 \
    AMTSWEG__CATALOGUE__DIR=/etc/amtsweg/procedures \
    AMTSWEG__WORKFLOWS__DIR=/etc/amtsweg/workflows \
    AMTSWEG__STORAGE__DATA_DIR=/var/lib/amtsweg \
    AMTSWEG__LOG__FORMAT=json
USER amtsweg
WORKDIR /var/lib/amtsweg
VOLUME ["/var/lib/amtsweg"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["amtsweg"]
CMD ["serve"]
