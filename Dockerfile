# Dockerfile - the keyrotator controller image: built from source on Debian bookworm, run from
# an empty image holding the binary, the shared libraries it links and nothing else (no shell).
#   docker build -t keyrotator/keyrotator:0.1.0 .
#
# BASE is the one Debian image both stages start from; pin it by digest for a reproducible
# build (the digest of the image you tested, e.g. from `docker buildx imagetools inspect`):
#   docker build --build-arg BASE=debian:bookworm-slim@sha256:<digest> \
#     -t keyrotator/keyrotator:0.1.0 .
# RUNTIME_PACKAGES is the one list of Debian packages whose libraries the binary links
# directly (libc6 aside); tests/packaging checks it against `ldd` + `dpkg -S` of the binary.
ARG BASE=debian:bookworm-slim
ARG RUNTIME_PACKAGES="libcurl4 libcjson1 libhiredis0.14 libyaml-0-2 libssl3 libmicrohttpd12 zlib1g"

# ---- build: compile and strip the binary ----
FROM ${BASE} AS build
# apt-get asks no questions (and prints no debconf warnings) in a build.
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libcurl4-openssl-dev libcjson-dev libhiredis-dev libyaml-dev libssl-dev libmicrohttpd-dev \
      zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY controller/ controller/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKR_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target keyrotator \
 && strip build/controller/keyrotator \
 && build/controller/keyrotator version

# ---- rootfs: the runtime libraries, resolved by ldd and copied into /rootfs ----
FROM ${BASE} AS rootfs
ARG DEBIAN_FRONTEND=noninteractive
ARG RUNTIME_PACKAGES
RUN apt-get update \
 && apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/controller/keyrotator /rootfs/usr/local/bin/keyrotator
# Every library ldd resolves (the direct ones and what they pull in), the loader, the CA
# bundle (HTTPS to Prometheus, a scrape target or a verify URL), and a passwd/group entry for
# the non-root user 65532. A library ldd cannot find fails the build.
RUN set -eu; \
    bin=/rootfs/usr/local/bin/keyrotator; \
    if ldd "$bin" | grep -q 'not found'; then ldd "$bin"; exit 1; fi; \
    for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do \
      cp --parents -L "$lib" /rootfs/; \
    done; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd; \
    echo 'nonroot:x:65532:' > /rootfs/etc/group; \
    chmod 1777 /rootfs/tmp; \
    ln -s keyrotator /rootfs/usr/local/bin/kubectl-keyrotation; \
    chroot /rootfs /usr/local/bin/keyrotator version

# ---- runtime ----
FROM scratch
COPY --from=rootfs /rootfs/ /
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/keyrotator"]
CMD ["run"]
LABEL org.opencontainers.image.title="keyrotator" \
      org.opencontainers.image.description="Kubernetes controller that rotates service-to-service API keys with zero downtime" \
      org.opencontainers.image.licenses="see repository"
