//! The only place that builds etcd key strings. Layout is Patroni's:
//! `/<namespace>/<scope>/{initialize, config, leader, members/<name>, status, history,
//! failover, sync, failsafe}`.

/// Key names for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// Keys for cluster `scope` under `namespace` (Patroni's default namespace is `/service/`).
    pub fn new(namespace: &str, scope: &str) -> Self {
        let ns = namespace.trim_matches('/');
        let base = if ns.is_empty() {
            format!("/{scope}/")
        } else {
            format!("/{ns}/{scope}/")
        };
        Keys { base }
    }
    /// The cluster prefix, with a trailing slash: everything of the cluster is below it.
    pub fn prefix(&self) -> &str {
        &self.base
    }
    /// `initialize`: the system identifier.
    pub fn initialize(&self) -> String {
        format!("{}initialize", self.base)
    }
    /// `config`: the dynamic configuration.
    pub fn config(&self) -> String {
        format!("{}config", self.base)
    }
    /// `leader`: the leader lease.
    pub fn leader(&self) -> String {
        format!("{}leader", self.base)
    }
    /// `members/`: prefix of the member records.
    pub fn members(&self) -> String {
        format!("{}members/", self.base)
    }
    /// `members/<name>`.
    pub fn member(&self, name: &str) -> String {
        format!("{}members/{name}", self.base)
    }
    /// `status`: the leader's optime and slots.
    pub fn status(&self) -> String {
        format!("{}status", self.base)
    }
    /// `history`: timeline history.
    pub fn history(&self) -> String {
        format!("{}history", self.base)
    }
    /// `failover`: switchover and failover requests.
    pub fn failover(&self) -> String {
        format!("{}failover", self.base)
    }
    /// `sync`: synchronous replication state.
    pub fn sync(&self) -> String {
        format!("{}sync", self.base)
    }
    /// `failsafe`: members reachable over the API while etcd is down.
    pub fn failsafe(&self) -> String {
        format!("{}failsafe", self.base)
    }
    /// `backup` (hapg's own): backup schedule claims and results.
    pub fn backup(&self) -> String {
        format!("{}backup", self.base)
    }
    /// `backup-members/<name>` (hapg's own): where a member's PostgreSQL is, for backups.
    pub fn backup_member(&self, name: &str) -> String {
        format!("{}backup-members/{name}", self.base)
    }
    /// Which key of the cluster `full` is (`"leader"`, `"members/pg1"`, ...), if it is below
    /// the prefix.
    pub fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.base.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn layout_matches_patroni() {
        let k = Keys::new("/service/", "demo");
        assert_eq!(k.prefix(), "/service/demo/");
        assert_eq!(k.leader(), "/service/demo/leader");
        assert_eq!(k.member("node1"), "/service/demo/members/node1");
        assert_eq!(k.relative("/service/demo/members/x"), Some("members/x"));
        assert_eq!(Keys::new("service", "d").leader(), "/service/d/leader");
        assert_eq!(Keys::new("/", "d").leader(), "/d/leader");
    }
}
