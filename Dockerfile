# Tollgate container image. The build stage runs scripts/build-image-steps.sh, the same script
# .ci/run runs on every CI build, so CI exercises these steps without a container runtime.
#   docker build -t tollgate:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /src
# Keep in step with SOURCES in scripts/build-image-steps.sh (test/manifest/image.test.ts checks).
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY examples ./examples
RUN scripts/build-image-steps.sh build /src

FROM node:20-bookworm-slim
# ip, nft and arping: the egress router's kernel mode and floating source addresses drive them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables iputils-arping \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tollgate
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/bundle ./dist/bundle
COPY --from=build /src/examples ./examples
RUN ln -s /opt/tollgate/dist/bundle/bin.js /usr/local/bin/tollgate
ENV NODE_ENV=production
# Istio's proxy uid: `tollgate init` capture rules exempt it. Nothing is written outside /tmp, so the
# root filesystem can be mounted read-only (the generated manifests mount an emptyDir on /tmp).
USER 1337:1337
# Tollgate handles SIGTERM itself: readiness fails, listeners close, in-flight requests finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tollgate"]
CMD ["--help"]
