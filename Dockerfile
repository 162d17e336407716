# Sediment broker image, used by localstack/docker-compose.yml.
# Not built or run on the project's CI machines (they have no Docker engine); documented for users who have Docker.
#   docker build -t sediment:local .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/sediment ./cmd/sediment && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sediment /usr/local/bin/sediment
# /data owned by the image's nonroot user (65532): a named volume mounted there starts with this ownership.
COPY --from=build --chown=65532:65532 /out/data /data
# Kafka 9092, Raft 9093, HTTP (/metrics /healthz /readyz) 9644
EXPOSE 9092 9093 9644
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/sediment", "serve", "--data-dir", "/data", "--listen", "0.0.0.0:9092", "--raft-listen", "0.0.0.0:9093", "--http-listen", "0.0.0.0:9644"]
