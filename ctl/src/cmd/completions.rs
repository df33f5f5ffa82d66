//! `hactl completions <shell>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell on stdout.

use clap::CommandFactory;

use crate::cli::Cli;

/// `completions` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the script.
pub fn run(a: Args) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "hactl", &mut std::io::stdout());
    Ok(())
}
