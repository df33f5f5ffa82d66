//! The watchdog device, held by the fence process (Patroni's `watchdog:` semantics).
//!
//! Opened on the first `ARM` (the first proof of authority), its timeout set to what the
//! agent asks (`ttl - safety_margin`), petted on every `ARM`, closed cleanly (magic close:
//! write `V`, then close) on `DISARM`, and after the fence stopped PostgreSQL. If the fence
//! process stalls or dies while the device is open, nothing pets it and the machine resets:
//! the last resort, after the fence's own deadline (see `ha::timing`).
//!
//! `driver: testing` is Patroni's test driver: the timeout is written into the file as
//! `Ctimeout=<n>\n` instead of an ioctl, keepalives are `1`, the magic close `V`, so a plain
//! file (opened for appending) records the whole sequence.

mod ioctl;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::protocol::WatchdogReport;

/// The watchdog as configured for this member.
#[derive(Debug)]
pub struct Watchdog {
    device: Option<PathBuf>,
    testing: bool,
    open: Option<File>,
    timeout: u32,
    magic_close: bool,
    last_error: Option<String>,
}

impl Watchdog {
    /// `device` is `None` when the watchdog is off.
    pub fn new(device: Option<PathBuf>, testing: bool) -> Watchdog {
        Watchdog {
            device,
            testing,
            open: None,
            timeout: 0,
            magic_close: true,
            last_error: None,
        }
    }

    /// What the agent is told.
    pub fn report(&self) -> WatchdogReport {
        let Some(dev) = &self.device else {
            return WatchdogReport::Off;
        };
        if self.open.is_some() {
            return WatchdogReport::Armed;
        }
        if let Some(e) = &self.last_error {
            return WatchdogReport::Unusable(e.clone());
        }
        match nix::unistd::access(dev, nix::unistd::AccessFlags::W_OK) {
            Ok(()) => WatchdogReport::Ready,
            Err(e) => WatchdogReport::Unusable(format!("{}: {e}", dev.display())),
        }
    }

    /// Opens the device if needed, sets `timeout` (seconds) if it changed, and pets it.
    pub fn pet(&mut self, timeout: u32) -> Result<(), String> {
        let Some(dev) = self.device.clone() else {
            return Ok(());
        };
        let r = self.pet_inner(&dev, timeout);
        self.last_error = r.as_ref().err().cloned();
        r
    }

    fn pet_inner(&mut self, dev: &std::path::Path, timeout: u32) -> Result<(), String> {
        if self.open.is_none() {
            let f = OpenOptions::new()
                .write(true)
                .append(self.testing)
                .open(dev)
                .map_err(|e| format!("cannot open {}: {e}", dev.display()))?;
            self.magic_close = true;
            if !self.testing {
                let info = ioctl::get_support(f.as_fd())
                    .map_err(|e| format!("{} is not a watchdog device: {e}", dev.display()))?;
                self.magic_close = info.options & ioctl::WDIOF_MAGICCLOSE != 0;
                if info.options & ioctl::WDIOF_SETTIMEOUT == 0 {
                    // Patroni's rule: a fixed timeout must be no longer than asked.
                    let t = ioctl::get_timeout(f.as_fd()).map_err(|e| e.to_string())?;
                    if u32::try_from(t).unwrap_or(u32::MAX) > timeout {
                        return Err(format!(
                            "{}: fixed timeout {t} s is longer than the {timeout} s needed",
                            dev.display()
                        ));
                    }
                }
            }
            self.open = Some(f);
            self.timeout = 0;
        }
        let Some(f) = self.open.as_mut() else {
            return Err("watchdog not open".into());
        };
        if timeout != self.timeout && timeout > 0 {
            if self.testing {
                f.write_all(format!("Ctimeout={timeout}\n").as_bytes())
                    .map_err(|e| e.to_string())?;
            } else {
                let asked = i32::try_from(timeout).unwrap_or(i32::MAX);
                let set = ioctl::set_timeout(f.as_fd(), asked).map_err(|e| e.to_string())?;
                if set > asked {
                    return Err(format!("driver set a {set} s timeout, {asked} s asked"));
                }
            }
            self.timeout = timeout;
        }
        f.write_all(b"1").map_err(|e| format!("keepalive: {e}"))
    }

    /// Closes the device cleanly (magic close), if open.
    pub fn close(&mut self) -> Result<(), String> {
        let Some(mut f) = self.open.take() else {
            return Ok(());
        };
        self.timeout = 0;
        if !self.magic_close {
            return Err("the device cannot be disarmed (no magic close): it keeps counting".into());
        }
        f.write_all(b"V").map_err(|e| format!("magic close: {e}"))
    }

    /// The device is open (and must be petted).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testing_driver_records_timeout_keepalives_and_magic_close() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("watchdog");
        let mut w = Watchdog::new(Some(dev.clone()), true);
        assert!(
            matches!(w.report(), WatchdogReport::Unusable(_)),
            "no file yet"
        );
        std::fs::write(&dev, "").unwrap();
        assert_eq!(w.report(), WatchdogReport::Ready);
        w.pet(25).unwrap();
        w.pet(25).unwrap();
        assert_eq!(w.report(), WatchdogReport::Armed);
        w.pet(10).unwrap();
        w.close().unwrap();
        assert_eq!(
            std::fs::read_to_string(&dev).unwrap(),
            "Ctimeout=25\n11Ctimeout=10\n1V"
        );
        assert_eq!(w.report(), WatchdogReport::Ready);
    }

    #[test]
    fn a_plain_file_is_not_a_watchdog_device() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("not-a-watchdog");
        std::fs::write(&dev, "").unwrap();
        let mut w = Watchdog::new(Some(dev), false);
        let e = w.pet(25).unwrap_err();
        assert!(e.contains("not a watchdog device"), "{e}");
        assert!(matches!(w.report(), WatchdogReport::Unusable(_)));
    }
}
