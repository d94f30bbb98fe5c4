//! `wsgate demo` as a newcomer meets it: what it prints next works when pasted. The wscat lines
//! (with the printed token) echo through the gateway with the stock wscat, the CLI hint runs as
//! printed (a path that works from where the user stands, not a `wsgate` that is not on PATH),
//! and the portals' self-signed certificate is named with the fingerprint openssl computes.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::process::{TempDir, terminate, tool, wscat};
use crate::harness::within;
use crate::portal::browser::shell_words;

#[tokio::test]
async fn what_the_demo_prints_works_when_pasted() {
    let dir = TempDir::new("demo");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["demo", "--ws-listen", "127.0.0.1:0", "--wss-listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        // Elsewhere than the binary, as a user who installed it: the hint is then its full path.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wsgate demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut printed = Vec::new();
    within(Duration::from_secs(60), "the demo prints what to do next", async {
        while printed.last().is_none_or(|line: &String| line != "Press Ctrl-C to stop.") {
            let line = lines.next_line().await.expect("stdout is readable");
            printed.push(line.unwrap_or_else(|| panic!("the demo exited; it printed:\n{}", printed.join("\n"))));
        }
    })
    .await;
    let text = printed.join("\n");
    let token = printed.iter().find_map(|l| l.strip_prefix("export TOKEN=")).expect("the token line").to_string();

    // The portals' certificate, as openssl sees it.
    let cert = data.join("tls/cert.pem");
    let openssl = std::process::Command::new(tool("WSGATE_OPENSSL", "openssl"))
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl runs");
    let openssl = String::from_utf8_lossy(&openssl.stdout);
    let fingerprint = openssl.trim().split_once('=').map(|(_, f)| f).expect("openssl prints a fingerprint");
    let named = format!("Certificate:        self-signed, {} (portals and wss://)", cert.display());
    assert!(text.contains(&named), "the demo names {named:?}:\n{text}");
    assert!(text.contains(&format!("accept it if it shows SHA-256 {fingerprint}\n")), "the fingerprint:\n{text}");

    // The tutorial's wscat lines, pasted with the token.
    let commands: Vec<String> =
        printed.iter().filter_map(|l| l.trim().strip_prefix("wscat ")).map(|c| c.replace("$TOKEN", &token)).collect();
    assert_eq!(commands.len(), 3, "three wscat lines:\n{text}");
    for command in &commands {
        let words = shell_words(command);
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let run = wscat(&args, "hello").await;
        assert!(run.received("hello"), "`wscat {command}` echoes: {} {}", run.stdout, run.stderr);
    }

    // The CLI hint, run as printed: VAR=value assignments, then the command.
    let hint = printed.iter().find_map(|l| l.split_once("And the CLI, e.g.:").map(|(_, c)| c.trim())).expect("a hint");
    let words = shell_words(hint);
    let (assignments, command): (Vec<&String>, Vec<&String>) =
        words.iter().partition(|w| w.contains('=') && !w.starts_with('-') && !w.contains('/'));
    let mut cli = Command::new(command[0]);
    cli.args(&command[1..]).current_dir(dir.path());
    for assignment in assignments {
        let (name, value) = assignment.split_once('=').expect("NAME=value");
        cli.env(name, value);
    }
    let output = within(Duration::from_secs(30), "the CLI hint runs", cli.output()).await.expect("the hint runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "`{hint}` works: {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("EchoWebSocket"), "`{hint}` lists the demo's API: {stdout}");
    terminate(&child);
    let _ = within(Duration::from_secs(20), "the demo stops", child.wait()).await;
}
