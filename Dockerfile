# syntax=docker/dockerfile:1
# The app image: the `upscale` command (bin/upscale.js over dist/) on node:20-slim, production dependencies only,
# running as the unprivileged `node` user. One image for every role: `serve`, `worker`, `sim`, `enqueue`, `demo`...
#   docker build -t kie-upscale-queue .
#   docker run --rm kie-upscale-queue --help

FROM node:20-slim AS build
WORKDIR /app
# Dependencies first, so source changes do not reinstall them. `prepare` (the build) needs the sources: skip scripts
# here and build below.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production
# V8 sizes its heap from the machine's memory and collects lazily: a worker with 10,000 tasks in flight holds ~30 MB
# live but grows to ~220 MB RSS on a large host. 256 MB of old space keeps it near 150 MB (bench scenario 4) and is
# ample for every command (enqueue's live heap stays under 40 MB for any file size). Override at run time if needed.
ENV NODE_OPTIONS=--max-old-space-size=256
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/bin ./bin
# OUTPUT_DIR of the download lane; a named volume mounted here starts out owned by `node`.
RUN mkdir -p /data/output && chown node:node /data/output
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/upscale.js"]
CMD ["--help"]
