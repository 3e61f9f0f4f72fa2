//! `sutra completions SHELL` and `sutra man DIR`: shell completions and man pages,
//! generated from the same clap definitions that parse the command line, so they never
//! fall behind it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::args::Cli;

/// Completions for one shell, on stdout.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Man pages for `sutra` and every subcommand, written as `DIR/sutra.1`,
/// `DIR/sutra-cluster.1`, `DIR/sutra-cluster-add-learner.1` ...
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing).
    pub out_dir: PathBuf,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) {
    completion_script(args.shell, &mut std::io::stdout());
}

fn completion_script(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "sutra", out);
}

/// Writes every man page; prints the paths written.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, "sutra", &args.out_dir, &mut written)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// Writes the page of `cmd`, named `name`, then those of its subcommands.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let page = cmd.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .with_context(|| format!("rendering the page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bash script is valid bash and completes the subcommands and their flags.
    #[test]
    fn bash_completions_parse_and_name_the_commands() {
        let mut script = Vec::new();
        completion_script(clap_complete::Shell::Bash, &mut script);
        let text = String::from_utf8(script).unwrap();
        for word in ["health", "add-learner", "--consistency", "--cluster-file"] {
            assert!(text.contains(word), "{word} missing");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sutra.bash");
        std::fs::write(&path, &text).unwrap();
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "bash -n failed");
    }

    /// Every subcommand gets its page, and a page documents its flags.
    #[test]
    fn man_pages_cover_every_command_and_their_flags() {
        let dir = tempfile::tempdir().unwrap();
        man(&ManArgs {
            out_dir: dir.path().to_path_buf(),
        })
        .unwrap();
        for page in [
            "sutra.1",
            "sutra-put.1",
            "sutra-cluster-add-learner.1",
            "sutra-alarm-disarm.1",
        ] {
            assert!(dir.path().join(page).exists(), "{page} missing");
        }
        let health = std::fs::read_to_string(dir.path().join("sutra-health.1")).unwrap();
        assert!(health.contains("serving"), "{health}");
        let top = std::fs::read_to_string(dir.path().join("sutra.1")).unwrap();
        assert!(top.contains(".TH sutra"), "{top}");
    }
}
