# One image for every dnsctl service: the container's command is the dnsctl subcommand
# (docker-compose.yml and the ECS task definitions in deploy/aws/ pass it).
#
# The base is Debian bookworm with Debian's python3 (3.11). `docker compose up --build` pulls
# debian:bookworm-slim; where no registry is reachable, deploy/local-base-image.sh builds the same
# distribution from Debian's packages and is passed as --build-arg BASE_IMAGE=dnsctl-base:bookworm.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive \
    DNSCTL_STATE_DIR=/var/lib/dnsctl \
    PATH=/opt/dnsctl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Metadata first: on a daemon with the vfs storage driver (CI here) every instruction's layer is a
# full copy of the file system, so only USER follows the large pip layer.
ENTRYPOINT ["dnsctl"]
CMD ["--help"]
WORKDIR /var/lib/dnsctl

# Debian's python3 is "externally managed" (PEP 668): the project goes into a venv of its own.
# An unprivileged user that owns nothing but the state directory and the mount points of the
# compose project's volumes (a new volume takes its mount point's owner): plan-key (the private
# key, planner only), plan-pub (the public key, enactors) and logs (the services' event logs, which
# the console reads). apt runs only for what the base lacks: debian:bookworm-slim has no python3,
# the base deploy/local-base-image.sh makes has these three packages already. (Few RUN steps: on
# a daemon with the vfs storage driver, as in CI, every layer is a full copy of the file system.)
RUN packages="python3 python3-venv ca-certificates" \
    && if ! dpkg -s $packages >/dev/null 2>&1; then \
         apt-get update && apt-get install -y --no-install-recommends $packages && rm -rf /var/lib/apt/lists/*; \
       fi \
    && python3 -m venv /opt/dnsctl \
    && groupadd --system --gid 10001 dnsctl \
    && useradd --system --uid 10001 --gid dnsctl --home-dir /var/lib/dnsctl --shell /usr/sbin/nologin dnsctl \
    && mkdir -p /var/lib/dnsctl/plan-key /var/lib/dnsctl/plan-pub /var/lib/dnsctl/logs \
    && chown -R dnsctl:dnsctl /var/lib/dnsctl \
    && chmod 700 /var/lib/dnsctl/plan-key

# Runtime dependencies only: the project itself, without the test extras. The context holds only
# pyproject.toml, README.md and the packages (.dockerignore is a whitelist). pip and setuptools
# go once the project is in: nothing runs them at run time, and every container is a copy of
# the image on the vfs storage driver (CI here), so every megabyte counts ten times per `up`.
COPY . /src/
RUN pip install /src \
    && rm -rf /src \
    && pip uninstall --yes --quiet pip setuptools
USER dnsctl:dnsctl
