//! Choosing the members a command acts on, as patronictl's `get_all_members` and
//! `get_members` do: a role filter (`--role`), then the named members that pass it (every
//! member that passes it when none is named).

use ha_agent::dcs::{Cluster, MemberEntry};

use crate::dcs::require_member;
use crate::error::usage;

/// `--role` (patronictl's `CtlPostgresqlRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The member holding the leader key.
    Leader,
    /// The leader, when it runs as a primary (not a standby leader).
    #[value(alias = "master")]
    Primary,
    /// The leader of a standby cluster.
    StandbyLeader,
    /// Every member that does not hold the leader key.
    Replica,
    /// Same as replica.
    Standby,
    /// Every member.
    Any,
}

impl Role {
    /// patronictl's name of the role.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Primary => "primary",
            Role::StandbyLeader => "standby-leader",
            Role::Replica => "replica",
            Role::Standby => "standby",
            Role::Any => "member",
        }
    }
}

/// The members of `c` that have `role`.
pub fn with_role(c: &Cluster, role: Role) -> Vec<&MemberEntry> {
    let leader = c.leader_name();
    c.members
        .iter()
        .filter(|m| {
            let is_leader = Some(m.name.as_str()) == leader;
            let standby_leader = m.record.normalized_role() == "standby_leader";
            match role {
                Role::Any => true,
                Role::Replica | Role::Standby => !is_leader,
                Role::Leader => is_leader,
                Role::Primary => is_leader && !standby_leader,
                Role::StandbyLeader => is_leader && standby_leader,
            }
        })
        .collect()
}

/// The named members (all of `role` when none is named) that have `role`.
pub fn members<'a>(
    c: &'a Cluster,
    scope: &str,
    names: &[String],
    role: Role,
) -> anyhow::Result<Vec<&'a MemberEntry>> {
    for n in names {
        require_member(c, scope, n)?;
    }
    let of_role = with_role(c, role);
    let chosen: Vec<&MemberEntry> = if names.is_empty() {
        of_role
    } else {
        of_role
            .into_iter()
            .filter(|m| names.contains(&m.name))
            .collect()
    };
    if chosen.is_empty() {
        return Err(if names.is_empty() {
            usage(format!("cluster {scope} has no {} member", role.word()))
        } else {
            usage(format!(
                "none of {} is a {} (see hactl list)",
                names.join(", "),
                role.word()
            ))
        });
    }
    Ok(chosen)
}
