# One image for every dnsctl service: the container's command is the dnsctl subcommand
# (docker-compose.yml and the ECS task definitions in deploy/aws/ pass it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DNSCTL_STATE_DIR=/var/lib/dnsctl

WORKDIR /src
# Runtime dependencies only: the project itself, without the test extras.
COPY pyproject.toml README.md ./
COPY services ./services
COPY cli ./cli
COPY lab ./lab
COPY planner ./planner
COPY enactor ./enactor
RUN pip install . \
    && rm -rf /src

# An unprivileged user that owns nothing but the state directory.
RUN groupadd --system --gid 10001 dnsctl \
    && useradd --system --uid 10001 --gid dnsctl --home-dir /var/lib/dnsctl --shell /usr/sbin/nologin dnsctl \
    && mkdir -p /var/lib/dnsctl \
    && chown dnsctl:dnsctl /var/lib/dnsctl
WORKDIR /var/lib/dnsctl
USER dnsctl:dnsctl

ENTRYPOINT ["dnsctl"]
CMD ["--help"]
