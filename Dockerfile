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
