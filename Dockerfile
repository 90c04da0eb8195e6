# ingot, for the reference stack (docker-compose.yml) and for deployments.
# Build: docker build -t ingot .   Run: docker run ingot --config /etc/ingot/ingot.toml run

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libssl-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ingot

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ingot --create-home ingot
COPY --from=build /src/target/release/ingot /usr/local/bin/ingot
# The demo contracts and the pipeline's SQL, where deploy/ingot.toml expects them.
COPY proto/contracts /app/proto/contracts
COPY sql /app/sql
USER ingot
WORKDIR /var/lib/ingot
EXPOSE 8080 9464
ENTRYPOINT ["ingot"]
CMD ["--config", "/etc/ingot/ingot.toml", "run"]
