# Sediment broker image, used by localstack/docker-compose.yml.
# Not built or run on the project's CI machines (they have no Docker engine); documented for users who have Docker.
#   docker build -t sediment:local .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/sediment ./cmd/sediment

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sediment /usr/local/bin/sediment
# Kafka 9092, Raft 9093, HTTP (/metrics /healthz /readyz) 9644
EXPOSE 9092 9093 9644
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/sediment", "serve", "--data-dir", "/data", "--listen", "0.0.0.0:9092", "--raft-listen", "0.0.0.0:9093", "--http-listen", "0.0.0.0:9644"]
