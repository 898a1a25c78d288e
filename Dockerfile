# Camgate production image: the gateway with the embedded UI, ffmpeg, a non-root user.
# The steps mirror CI (.ci/run): the same scripts install the same packages and build the
# same way, so what CI tests is what this image ships.

# --- UI: React app built into ui/dist ---
FROM node:20-bookworm-slim AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

# --- Gateway and plugins ---
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=ui /src/ui/dist ui/dist
RUN cargo build --release --locked -p camgate

# --- Runtime ---
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/camgate --create-home camgate
COPY --from=build /src/target/release/camgate /usr/local/bin/camgate
COPY config/docker.yaml /etc/camgate/camgate.yaml
# The API-managed streams file lives next to the manifest: give the gateway a writable dir.
RUN mkdir -p /etc/camgate /usr/lib/camgate/plugins && chown -R camgate /etc/camgate
USER camgate
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["camgate"]
CMD ["run", "--config", "/etc/camgate/camgate.yaml"]
