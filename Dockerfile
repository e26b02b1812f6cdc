# syntax=docker/dockerfile:1
#
# switchboard's image: a static binary (no cgo) on distroless, running as
# the nonroot user (65532). Build from the repository's root:
#   docker build -t switchboard .
# The state folder /var/lib/switchboard holds the call-record journal, the
# recording spool (ciphertext only) and the pid file that `switchboard
# drain` reads: give it a volume so they survive a restart.
# docs/operations.md tells the ports, settings and how to run it.
# The version `switchboard version` and switchboard_build_info report comes
# from the build arguments (default "dev"; the revision otherwise from the
# Go toolchain's VCS stamp, which a build without .git lacks):
#   docker build --build-arg VERSION=1.4.0 --build-arg REVISION=$(git rev-parse HEAD) -t switchboard .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/switchboard ./cmd/switchboard
RUN mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchboard /switchboard
COPY --from=build --chown=65532:65532 /out/state /var/lib/switchboard
ENV SWITCHBOARD_HTTP_ADDR=:8080 \
    SWITCHBOARD_METRICS_ADDR=:9090 \
    SWITCHBOARD_SIP_ADDR=:5060 \
    SWITCHBOARD_JOURNAL=/var/lib/switchboard/journal \
    SWITCHBOARD_RECORDING_SPOOL=/var/lib/switchboard/spool \
    SWITCHBOARD_PID_FILE=/var/lib/switchboard/switchboard.pid
USER 65532:65532
VOLUME /var/lib/switchboard
# HTTP (operator page, API, signalling, /healthz, /readyz), /metrics on
# its own port (publish it only to Prometheus: it shows volumes across
# tenants), SIP, and the RTP range (SWITCHBOARD_RTP_PORTS, 10000-20000
# unless set).
EXPOSE 8080/tcp 9090/tcp 5060/udp 5060/tcp 10000-20000/udp
ENTRYPOINT ["/switchboard"]
CMD ["serve"]
