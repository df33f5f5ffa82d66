# hapg-etcd: etcd 3.4 from Debian bookworm; configured entirely by ETCD_* variables.
ARG BASE=hapg-base:bookworm
FROM ${BASE}

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends etcd-server etcd-client; \
    rm -rf /var/lib/apt/lists/*; \
    install -d -o etcd -g etcd -m 0700 /var/lib/etcd

USER etcd
ENV ETCD_DATA_DIR=/var/lib/etcd/data
EXPOSE 2379 2380
ENTRYPOINT ["/usr/bin/etcd"]
