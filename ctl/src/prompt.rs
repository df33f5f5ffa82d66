//! Questions asked the way patronictl (click) asks them: `Text [default]: ` and
//! `Text [y/N]: ` on stdout, answers read from stdin.
//!
//! A command that would ask something without a terminal on stdin refuses instead (exit 2),
//! so a script never hangs on, or silently answers, a question meant for a person; `--force`
//! skips the questions. Only `remove` reads its typed confirmations from a pipe, as
//! patronictl does, since they must be typed out exactly.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{failed, usage};

/// Refuses when stdin is not a terminal: `what` would have to ask.
pub fn require_terminal(what: &str) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(usage(format!(
            "{what} asks for confirmation, but stdin is not a terminal: pass --force (and the options it would ask for)"
        )))
    }
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        return Err(failed("aborted: no answer (end of input)"));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks `text`; an empty answer takes `default` (shown in brackets; asked again when none).
pub fn ask(text: &str, default: Option<&str>) -> anyhow::Result<String> {
    loop {
        let mut out = std::io::stdout();
        match default {
            Some(d) => write!(out, "{text} [{d}]: ")?,
            None => write!(out, "{text}: ")?,
        }
        out.flush()?;
        let answer = read_line()?;
        if !answer.is_empty() {
            return Ok(answer);
        }
        if let Some(d) = default {
            return Ok(d.to_string());
        }
    }
}

/// Asks a yes/no question, default no.
pub fn confirm(text: &str) -> anyhow::Result<bool> {
    loop {
        let mut out = std::io::stdout();
        write!(out, "{text} [y/N]: ")?;
        out.flush()?;
        match read_line()?.trim().to_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "" | "n" | "no" => return Ok(false),
            _ => writeln!(out, "Error: invalid input")?,
        }
    }
}
