//! The Linux watchdog ioctls (`linux/watchdog.h`). The only `unsafe` in the workspace: an
//! ioctl hands the kernel a pointer, which Rust cannot check.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc::c_int;

/// `struct watchdog_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct WatchdogInfo {
    pub options: u32,
    pub firmware_version: u32,
    pub identity: [u8; 32],
}

/// `WDIOF_SETTIMEOUT`: the timeout can be set.
pub(super) const WDIOF_SETTIMEOUT: u32 = 0x0080;
/// `WDIOF_MAGICCLOSE`: writing 'V' before close stops the watchdog.
pub(super) const WDIOF_MAGICCLOSE: u32 = 0x0100;

nix::ioctl_read!(wdioc_getsupport, b'W', 0, WatchdogInfo);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, c_int);

/// `WDIOC_GETSUPPORT`.
pub(super) fn get_support(fd: BorrowedFd<'_>) -> nix::Result<WatchdogInfo> {
    let mut info = WatchdogInfo::default();
    // SAFETY: `info` is a valid, writable `struct watchdog_info` for the whole call, and the
    // fd is open for the duration of the borrow.
    unsafe { wdioc_getsupport(fd.as_raw_fd(), &raw mut info) }?;
    Ok(info)
}

/// `WDIOC_SETTIMEOUT`; returns the timeout the driver actually set.
pub(super) fn set_timeout(fd: BorrowedFd<'_>, secs: c_int) -> nix::Result<c_int> {
    let mut t = secs;
    // SAFETY: `t` is a valid, writable int for the whole call; the fd is open.
    unsafe { wdioc_settimeout(fd.as_raw_fd(), &raw mut t) }?;
    Ok(t)
}

/// `WDIOC_GETTIMEOUT`.
pub(super) fn get_timeout(fd: BorrowedFd<'_>) -> nix::Result<c_int> {
    let mut t: c_int = 0;
    // SAFETY: `t` is a valid, writable int for the whole call; the fd is open.
    unsafe { wdioc_gettimeout(fd.as_raw_fd(), &raw mut t) }?;
    Ok(t)
}
