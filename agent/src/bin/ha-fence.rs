//! `ha-fence`: the fence process the agent starts (see `ha_agent::fence::server`). Not meant
//! to be run by hand, but harmless: a second fence for the same socket exits at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ha_agent::fence::server::{ServerOpts, run};

const USAGE: &str = "usage: ha-fence --socket PATH --data-dir PATH --member NAME \
                     [--watchdog DEVICE [--watchdog-testing]] [--idle-exit-secs N]";

fn main() -> ExitCode {
    let mut socket = None;
    let mut data_dir = None;
    let mut member = None;
    let mut watchdog = None;
    let mut watchdog_testing = false;
    let mut idle_exit = Duration::from_secs(600);
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--socket") => socket = args.next().map(PathBuf::from),
            Some("--data-dir") => data_dir = args.next().map(PathBuf::from),
            Some("--member") => member = args.next().and_then(|m| m.into_string().ok()),
            Some("--watchdog") => watchdog = args.next().map(PathBuf::from),
            Some("--watchdog-testing") => watchdog_testing = true,
            Some("--idle-exit-secs") => {
                match args.next().and_then(|s| s.to_str()?.parse::<u64>().ok()) {
                    Some(s) => idle_exit = Duration::from_secs(s),
                    None => {
                        eprintln!("ha-fence: --idle-exit-secs needs a number\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            _ => {
                eprintln!("ha-fence: unexpected argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(socket), Some(data_dir), Some(member)) = (socket, data_dir, member) else {
        eprintln!("ha-fence: --socket, --data-dir and --member are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let code = run(ServerOpts {
        socket,
        data_dir,
        member,
        watchdog,
        watchdog_testing,
        idle_exit,
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
