# device-descheduler image: build with the project's Makefile on Debian
# bookworm, run on bookworm-slim with only the shared libraries it links.
#   docker build -t device-descheduler .

FROM debian:bookworm-slim AS build
# The build dependencies of `make deps` that the binary needs (the test-only
# ones, cmocka, valgrind, clang, kubectl, are not needed to build it).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config ca-certificates \
      libcurl4-openssl-dev libjansson-dev libyaml-dev libuv1-dev libmicrohttpd-dev \
      libcmocka-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# make clean: never reuse objects from a build tree copied from the host.
RUN make clean \
 && make -j"$(nproc)" bin/device-descheduler \
 && strip bin/device-descheduler

FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates libcurl4 libjansson4 libyaml-0-2 libuv1 libmicrohttpd12 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/device-descheduler /usr/local/bin/device-descheduler
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/device-descheduler"]
