# hapg-haproxy: HAProxy 2.6 from Debian bookworm. The configuration (the repository's
# haproxy/haproxy.cfg) is mounted at /etc/hapg/haproxy.cfg by docker-compose.yml.
ARG BASE=hapg-base:bookworm
FROM ${BASE}

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends haproxy; \
    rm -rf /var/lib/apt/lists/*

USER haproxy
EXPOSE 5000 5001 7000
# -db: stay in the foreground and log to stderr.
ENTRYPOINT ["/usr/sbin/haproxy", "-db", "-f", "/etc/hapg/haproxy.cfg"]
