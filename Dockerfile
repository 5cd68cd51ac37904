# One image for every process of the platform (k8s/ runs it five times):
#   python -m services.<orders|inventory|customers|reporting|gateway>           serve
#   python -m services.<orders|inventory|customers|reporting|gateway> migrate   only migrate
# The gateway serves the web console built into /app/console.
# Build: docker build -t aftersales:dev .
# The runtime dependencies and the packages (servicekit, services, the generated code in gen/)
# go into a virtualenv; no dev dependencies, no tests (.dockerignore keeps them out).

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer stays cached while the code changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY gen ./gen
COPY servicekit ./servicekit
COPY services ./services
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check

# The web console, built from its lockfile; the gateway serves web/dist (CONSOLE_DIST).
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/index.html web/vite.config.ts web/tsconfig.json ./
COPY web/src ./src
COPY web/scripts ./scripts
RUN npm run build

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aftersales" \
      org.opencontainers.image.description="After-sales service platform: gateway and services"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=web /web/dist /app/console
ENV CONSOLE_DIST=/app/console
# An empty working directory: the code is imported from the virtualenv, not from here.
WORKDIR /app
USER 10001:10001
# gRPC (services), Prometheus (services), HTTP (gateway), as k8s/base sets them.
EXPOSE 50051 9090 8080
CMD ["python", "-m", "services.gateway"]
