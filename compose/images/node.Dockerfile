# hapg-node: PostgreSQL 15 and pgBackRest from Debian bookworm, plus the host-built ha-agent,
# ha-fence and hactl. Built by compose/build-images.sh from a context holding bin/ha-agent,
# bin/ha-fence and bin/hactl.
ARG BASE=hapg-base:bookworm
FROM ${BASE}

# postgresql-common first, so that no default cluster (15/main) is created: the agent runs
# initdb (or a base backup) into its own data directory.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-common; \
    sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf; \
    apt-get install -y --no-install-recommends postgresql-15 pgbackrest curl; \
    rm -rf /var/lib/apt/lists/*; \
    install -d -o postgres -g postgres -m 0750 /var/lib/hapg /var/lib/pgbackrest; \
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql

# ha-fence next to ha-agent: the agent starts it from there.
COPY bin/ha-agent bin/ha-fence bin/hactl /usr/local/bin/

# hactl (and `docker compose exec nodeN hactl list`) reads the agent's own file.
ENV HACTL_CONFIG=/etc/hapg/node.yml \
    PGHOST=/var/run/postgresql
# The agent refuses to run as root, and so does PostgreSQL.
USER postgres
WORKDIR /var/lib/hapg
EXPOSE 5432 8008
ENTRYPOINT ["/usr/local/bin/ha-agent"]
CMD ["/etc/hapg/node.yml"]
