# syntax=docker/dockerfile:1
# sigmatrain images, one Dockerfile, two runtime targets (ENTRYPOINT is `sigmatrain`, i.e. dist/coordinator/cli/index.js):
#   docker build --target cpu -t sigmatrain:0.1.0 .       coordinator + wasm/cpu workers (node:20-bookworm-slim)
#   docker build --target gpu -t sigmatrain:0.1.0-gpu .   CUDA 11.2 + cuDNN 8 workers with @tensorflow/tfjs-node-gpu
# The gpu target's build downloads libtensorflow (tfjs-node-gpu's install script): it needs internet access.
# Checked statically by test/unit/deploy/k8s-docker.test.ts (no Docker engine on the build machine).

ARG NODE_IMAGE=node:20-bookworm
ARG NODE_SLIM_IMAGE=node:20-bookworm-slim
# tfjs-node-gpu 4.22 links libtensorflow 2.9.1: CUDA 11.2 and cuDNN 8.1 (libcudart.so.11.0, libcudnn.so.8).
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG TFJS_NODE_GPU_VERSION=4.22.0

# ---- build: compile the TypeScript (dev dependencies; no native module is needed by tsc) ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY shared ./shared
COPY coordinator ./coordinator
COPY worker ./worker
RUN npx tsc -p tsconfig.json \
 && test -f dist/coordinator/cli/index.js

# ---- deps: production dependencies only, with their prebuilt native addons (zeromq, sharp, msgpackr-extract) ---
# --ignore-scripts keeps npm from running our own `prepare` (a tsc build, which needs the dev dependencies);
# `npm rebuild` then runs the dependencies' install scripts, which pick their prebuilt binaries (glibc >= 2.25).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm rebuild \
 && npm cache clean --force

# ---- gpu-base: the CUDA runtime with Node 20 (the official Linux binary needs glibc >= 2.28; focal has 2.31) ----
FROM ${NODE_SLIM_IMAGE} AS node
FROM ${CUDA_IMAGE} AS gpu-base
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version

# ---- gpu-deps: production dependencies + @tensorflow/tfjs-node-gpu, installed on the CUDA base itself -------------
# Its install script downloads libtensorflow (GPU) and the prebuilt addon, falling back to node-gyp (python3/make/g++).
# It depends on @tensorflow/tfjs at exactly 4.22.0, our own version, so npm dedupes it: one tfjs engine.
FROM gpu-base AS gpu-deps
ARG TFJS_NODE_GPU_VERSION
# Only Ubuntu's own archive is needed here (older CUDA images carry NVIDIA apt sources with a rotated key).
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia*.list \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm install --omit=dev --no-save --no-audit --no-fund --ignore-scripts "@tensorflow/tfjs-node-gpu@${TFJS_NODE_GPU_VERSION}" \
 && npm rebuild \
 && ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so* \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
 && test ! -e node_modules/@tensorflow/tfjs-node-gpu/node_modules/@tensorflow/tfjs \
 && npm cache clean --force

# ---- gpu: workers on CUDA (backend auto picks tensorflow when tfjs-node-gpu loads) --------------------------------
FROM gpu-base AS gpu
ENV NODE_ENV=production \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=1
RUN groupadd --system --gid 10001 sigmatrain \
 && useradd --system --uid 10001 --gid sigmatrain --home-dir /workspace --shell /usr/sbin/nologin sigmatrain \
 && install -d -o sigmatrain -g sigmatrain /workspace /runs /data
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/coordinator ./dist/coordinator
COPY --from=build /src/dist/worker ./dist/worker
COPY --from=build /src/dist/shared ./dist/shared
COPY package.json ./
COPY configs ./configs
WORKDIR /workspace
USER 10001:10001
EXPOSE 9400-9408 29400 29500-29507
ENTRYPOINT ["node", "/app/dist/coordinator/cli/index.js"]
CMD ["--help"]

# ---- cpu: the default target (last stage) — the coordinator, and workers on the wasm/cpu backends ------------------
FROM ${NODE_SLIM_IMAGE} AS cpu
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 sigmatrain \
 && useradd --system --uid 10001 --gid sigmatrain --home-dir /workspace --shell /usr/sbin/nologin sigmatrain \
 && install -d -o sigmatrain -g sigmatrain /workspace /runs /data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/coordinator ./dist/coordinator
COPY --from=build /src/dist/worker ./dist/worker
COPY --from=build /src/dist/shared ./dist/shared
COPY package.json ./
COPY configs ./configs
# Relative paths (data/, runs/) land in the user's writable /workspace; mount /runs (checkpoints) and /data.
WORKDIR /workspace
USER 10001:10001
# /metrics: coordinator 9400, worker with local rank r 9401 + r; coordinator control 29400; tcp ring 29500 + r.
EXPOSE 9400-9408 29400 29500-29507
ENTRYPOINT ["node", "/app/dist/coordinator/cli/index.js"]
CMD ["--help"]
