# Builds the same plugin rootfs as `make plugin`, for people who publish weft:
#   docker build -t weft-rootfs . && id=$(docker create weft-rootfs) &&
#   mkdir -p build/plugin/rootfs && docker export "$id" | tar -x -C build/plugin/rootfs &&
#   cp config.json build/plugin/ && docker plugin create yourorg/weft:TAG build/plugin
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /weft ./cmd/weft

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/docker/plugins /var/lib/weft /host/proc
COPY --from=build /weft /weft
ENTRYPOINT ["/weft"]
