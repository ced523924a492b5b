# syntax=docker/dockerfile:1
#
# The cordstream image: one static binary on a distroless base (CA
# certificates and time zone data included, no shell), running as a non-root
# user.
#
#   docker build -t cordstream:local --build-arg VERSION="$(git describe --tags --always --dirty)" .
#   docker run --rm cordstream:local version
#   docker run --rm -it cordstream:local demo --duration 30s
#
# Secrets reach the container as files, never in its environment (where
# `docker inspect` shows them) nor in the image: the Discord token with
# --token-file, the SASL password with --sasl-password-file. The files must
# be readable by the image's user (nonroot, uid 65532) and by no one else:
#
#   sudo sh -c 'umask 077; cat > /srv/cordstream/discord_token'   # paste the token, then Ctrl-D
#   sudo chown 65532:65532 /srv/cordstream/discord_token
#   docker run -d --mount type=bind,src=/srv/cordstream/discord_token,dst=/run/secrets/discord_token,readonly \
#       cordstream:local bot --token-file /run/secrets/discord_token --brokers kafka:9092
#
# deploy/docker-compose.yml does the same with a Compose secret.
#
# deploy/docker_test.go replays the build stage (in the build context
# .dockerignore leaves) and checks the binary is static, and that the final
# stage runs as non-root.

FROM golang:1.26 AS build
WORKDIR /src
# Build with the Go of this image; never download another toolchain.
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/cordstream/cordstream/internal/cli.Version=$VERSION" -o /out/cordstream ./cmd/cordstream

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cordstream /cordstream
USER nonroot:nonroot
ENTRYPOINT ["/cordstream"]
CMD ["--help"]
