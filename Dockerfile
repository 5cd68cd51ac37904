# One image for every process of the platform (k8s/ runs it five times):
#   python -m services.<orders|inventory|customers|reporting|gateway>           serve
#   python -m services.<orders|inventory|customers|reporting|gateway> migrate   only migrate
# Build: docker build -t aftersales:dev .
# The runtime dependencies and the packages (servicekit, services, the generated code in gen/)
# go into a virtualenv; no dev dependencies, no tests (.dockerignore keeps them out).

ARG PYTHON_IMAGE=python:3.11-slim

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
# An empty working directory: the code is imported from the virtualenv, not from here.
WORKDIR /app
USER 10001:10001
# gRPC (services), Prometheus (services), HTTP (gateway), as k8s/base sets them.
EXPOSE 50051 9090 8080
CMD ["python", "-m", "services.gateway"]
