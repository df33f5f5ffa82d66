//! Patroni's user callbacks (`postgresql.callbacks`): after an event, run
//! `<command> <action> <role> <scope>` in the background.
//!
//! Invariants: a callback never blocks or fails the operation it reports on: it is spawned
//! and its exit status only logged. The command is split on whitespace (no shell), as
//! Patroni does.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;

use crate::ha::PgRole;

/// The events Patroni reports to callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackAction {
    /// PostgreSQL was started.
    OnStart,
    /// PostgreSQL was stopped.
    OnStop,
    /// PostgreSQL was restarted.
    OnRestart,
    /// The configuration was reloaded.
    OnReload,
    /// The role changed (promotion, demotion).
    OnRoleChange,
}

impl CallbackAction {
    /// The configuration key and the first argument: `on_start`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackAction::OnStart => "on_start",
            CallbackAction::OnStop => "on_stop",
            CallbackAction::OnRestart => "on_restart",
            CallbackAction::OnReload => "on_reload",
            CallbackAction::OnRoleChange => "on_role_change",
        }
    }
}

impl fmt::Display for CallbackAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The argument vector for `action`, or `None` when no callback is configured.
pub fn command_line(
    callbacks: &BTreeMap<String, String>,
    action: CallbackAction,
    role: PgRole,
    scope: &str,
) -> Option<Vec<String>> {
    let cmd = callbacks.get(action.as_str())?;
    let mut argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        return None;
    }
    argv.extend([
        action.as_str().to_string(),
        role.to_string(),
        scope.to_string(),
    ]);
    Some(argv)
}

/// Spawns the callback for `action` without waiting; failures are logged.
pub fn fire(
    callbacks: &BTreeMap<String, String>,
    action: CallbackAction,
    role: PgRole,
    scope: &str,
) {
    let Some(argv) = command_line(callbacks, action, role, scope) else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%action, "callback not run: no async runtime");
        return;
    };
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = {
        // spawn() needs the runtime's context for the child's reaper.
        let _guard = handle.enter();
        cmd.spawn()
    };
    match child {
        Err(e) => tracing::warn!(%action, program = %argv[0], error = %e, "callback could not run"),
        Ok(child) => {
            handle.spawn(async move {
                match child.wait_with_output().await {
                    Ok(out) if out.status.success() => {
                        tracing::debug!(%action, "callback finished");
                    }
                    Ok(out) => tracing::warn!(
                        %action,
                        status = %out.status,
                        stderr = %super::ctl::tail(&String::from_utf8_lossy(&out.stderr), 5),
                        "callback failed"
                    ),
                    Err(e) => tracing::warn!(%action, error = %e, "callback failed"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_appends_action_role_and_scope() {
        let cbs = BTreeMap::from([("on_start".to_string(), "/bin/cb --flag".to_string())]);
        assert_eq!(
            command_line(&cbs, CallbackAction::OnStart, PgRole::Primary, "demo"),
            Some(vec![
                "/bin/cb".into(),
                "--flag".into(),
                "on_start".into(),
                "primary".into(),
                "demo".into()
            ])
        );
        assert_eq!(
            command_line(&cbs, CallbackAction::OnStop, PgRole::Primary, "demo"),
            None
        );
    }

    #[tokio::test]
    async fn a_fired_callback_runs_with_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("cb.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {}.tmp && mv {0}.tmp {0}\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cbs = BTreeMap::from([("on_role_change".to_string(), script.display().to_string())]);
        fire(&cbs, CallbackAction::OnRoleChange, PgRole::Replica, "demo");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !out.exists() {
            assert!(std::time::Instant::now() < deadline, "callback never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "on_role_change replica demo\n"
        );
    }
}
