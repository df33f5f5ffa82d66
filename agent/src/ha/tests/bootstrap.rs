//! Bootstrap: the race to initialize a cluster and what the winner does next.

use super::*;

#[test]
fn bootstrap_race() {
    let uninit = |v: &mut ClusterView| {
        v.initialize = None;
        v.has_config = false;
    };
    check([
        case("empty node in an uninitialized cluster races to bootstrap")
            .given(node("pg1").cluster(uninit))
            .want(
                [Action::ClaimInitialize, Action::Bootstrap],
                Reason::RacingToBootstrap,
            ),
        case("nofailover member never bootstraps")
            .given(node("pg1").cluster(uninit).config(|c| c.nofailover = true))
            .want([], Reason::CannotBootstrap),
        case("member without a bootstrap section never bootstraps")
            .given(
                node("pg1")
                    .cluster(uninit)
                    .config(|c| c.can_bootstrap = false),
            )
            .want([], Reason::CannotBootstrap),
        case("someone else claimed initialize: wait")
            .given(node("pg2").cluster(|v| v.initialize = Some(String::new())))
            .want([], Reason::WaitingForLeaderToBootstrap),
        case("our bootstrap job still runs")
            .given(
                node("pg1")
                    .cluster(|v| v.initialize = Some(String::new()))
                    .bootstrapping()
                    .job(JobKind::Bootstrap, false),
            )
            .want([], Reason::Bootstrapping),
        case("bootstrapped primary takes the lease and publishes the system id")
            .given(
                node("pg1")
                    .primary(50)
                    .cluster(|v| {
                        v.initialize = Some(String::new());
                        v.has_config = false;
                    })
                    .bootstrapping()
                    .last_job(JobKind::Bootstrap, true, 10),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::WriteInitialize {
                        sysid: SYSID.into(),
                    },
                    Action::SeedConfig { replacing: None },
                    slots(&[]),
                ],
                Reason::InitializedNewCluster,
            ),
        case("failed bootstrap gives the initialize key back")
            .given(
                node("pg1")
                    .cluster(|v| v.initialize = Some(String::new()))
                    .bootstrapping()
                    .last_job(JobKind::Bootstrap, false, 10),
            )
            .want([Action::CancelInitialize], Reason::BootstrapFailed),
        case("empty node in an initialized cluster without leader waits")
            .given(node("pg2"))
            .want([], Reason::WaitingForLeaderToBootstrap),
    ]);
}
