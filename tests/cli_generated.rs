//! What the clap definitions generate besides `--help`: shell completions, the man page, and
//! `--version` naming the commit the binary was built from. The real binary is run, and its
//! output is checked by the programs that consume it (bash, groff).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const SUBCOMMANDS: [&str; 7] = [
    "run",
    "plan",
    "merge",
    "clean",
    "config",
    "completions",
    "man",
];

fn compose_shard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compose-shard"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = compose_shard(args);
    assert!(
        out.status.success(),
        "compose-shard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run `program args` with `input` on stdin; panics unless it succeeds.
fn check_with(program: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (needed by this test): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} rejected the input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn bash_completions_are_valid_bash_and_complete_subcommands_and_flags() {
    let script = stdout_of(&["completions", "bash"]);
    check_with("bash", &["-n"], &script);
    // Sourcing defines the function and registers it for the command.
    let registered = check_with(
        "bash",
        &["-c", "source /dev/stdin; complete -p compose-shard"],
        &script,
    );
    assert!(String::from_utf8_lossy(&registered.stdout).contains("compose-shard"));
    for word in SUBCOMMANDS
        .iter()
        .chain(&["--groups", "--only", "--store-durations"])
    {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef compose-shard"), "{}", &zsh[..80]);
    let fish = stdout_of(&["completions", "fish"]);
    assert!(fish.contains("complete -c compose-shard"));
    for word in SUBCOMMANDS {
        assert!(zsh.contains(word), "zsh completion lacks {word}");
        assert!(fish.contains(word), "fish completion lacks {word}");
    }
}

#[test]
fn completions_reject_an_unknown_shell_as_a_usage_error() {
    let out = compose_shard(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

/// Render roff with groff, failing on any warning (`-ww`), and return the text.
fn render_man(roff: &str) -> String {
    // Plain text (no overstriking), long lines and no hyphenation, so words can be searched.
    let args = [
        "-man",
        "-Tutf8",
        "-ww",
        "-P",
        "-cbou",
        "-rLL=200n",
        "-rHY=0",
    ];
    let out = check_with("groff", &args, roff);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.trim().is_empty(), "groff warnings: {warnings}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_page_renders_and_lists_every_subcommand() {
    let roff = stdout_of(&["man"]);
    assert!(roff.contains(".TH compose-shard 1"), "{}", &roff[..200]);
    let text = render_man(&roff);
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SUBCOMMANDS", "VERSION"] {
        assert!(text.contains(section), "man page lacks {section}:\n{text}");
    }
    for word in SUBCOMMANDS {
        assert!(
            text.contains(&format!("compose-shard-{word}(1)")),
            "{word}:\n{text}"
        );
    }
    assert!(text.contains("isolated copies of its docker-compose project"));
}

#[test]
fn man_page_of_a_subcommand_documents_its_flags() {
    let text = render_man(&stdout_of(&["man", "run"]));
    assert!(text.contains("compose-shard-run"), "{text}");
    for flag in ["--groups", "--only", "--store-durations", "--ready-timeout"] {
        assert!(text.contains(flag), "man compose-shard-run lacks {flag}");
    }
    let out = compose_shard(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no subcommand \"nope\"") && err.contains("run, plan"),
        "{err}"
    );
}

#[test]
fn version_names_the_commit_of_head() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is needed to know which commit the binary should name");
    assert!(head.status.success(), "this test runs in a git checkout");
    let head = String::from_utf8(head.stdout).unwrap();
    let expected = format!(
        "compose-shard {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        head.trim()
    );
    assert_eq!(stdout_of(&["--version"]), expected);
    // Subcommands answer `--version` too, under their man page name.
    assert_eq!(
        stdout_of(&["run", "--version"]),
        expected.replace("compose-shard ", "compose-shard-run ")
    );
}
