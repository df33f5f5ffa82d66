//! Canonical states: every stored instant is made relative to now and lease ids are renumbered
//! after each step, so that two histories that lead to the same situation are one state for
//! the explorer. Revisions are left alone: they must never repeat.

use ha_agent::ha::HaConfig;

use super::etcd::Etcd;
use super::world::{Rel, World};

impl World {
    /// Makes now the origin of every stored instant, clamps instants in the past that only
    /// matter as "in the past", and renumbers leases: equal situations become equal states.
    pub(super) fn canonical(&mut self, cfg: &HaConfig) {
        let shift = std::mem::take(&mut self.t);
        let floor = -i64::try_from(cfg.ttl.0).unwrap_or(0) - 1;
        let past = |r: Rel| (r - shift).max(floor);
        for l in self.etcd.leases.values_mut() {
            *l -= shift;
        }
        for m in &mut self.m {
            m.lease_valid_until = m.lease_valid_until.map(past);
            m.vacant_since = m.vacant_since.map(past);
            m.fence = m.fence.map(|f| f - shift);
            // When the cut began does not matter to the core (it counts from its lease).
            m.cut_since = m.cut_since.map(|_| 0);
            for l in m.view.leases.values_mut() {
                *l -= shift;
            }
        }
        // Lease ids in a canonical order: the members' own, then the others by expiry.
        let mut order: Vec<u64> = self.m.iter().filter_map(|m| m.lease).collect();
        let mut rest: Vec<(Rel, u64)> = self
            .etcd
            .leases
            .iter()
            .filter(|(id, _)| !order.contains(id))
            .map(|(id, exp)| (*exp, *id))
            .collect();
        rest.sort_unstable();
        order.extend(rest.into_iter().map(|(_, id)| id));
        let map = |id: u64| -> u64 {
            order
                .iter()
                .position(|x| *x == id)
                .map_or(0, |p| u64::try_from(p).unwrap_or(0) + 1)
        };
        let renumber = |e: &mut Etcd| {
            e.leases = e.leases.iter().map(|(id, exp)| (map(*id), *exp)).collect();
            if let Some((_, l, _)) = &mut e.leader {
                *l = map(*l);
            }
            for r in e.members.iter_mut().flatten() {
                r.1 = map(r.1);
            }
            // Revisions stay as they are: they must never repeat (a compare-and-set on a
            // revision seen in a stale view must fail once the key changed in between).
            e.next_lease = 0;
        };
        renumber(&mut self.etcd);
        for m in &mut self.m {
            m.lease = m.lease.map(map);
            renumber(&mut m.view);
        }
    }
}
