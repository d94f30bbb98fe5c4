//! A PostgreSQL server of the test's own, on a free port, that the test may stop and start.
//! It lives in a fresh directory under the temp dir; dropping the handle stops the server
//! (immediately) and removes the directory, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{free_port, unique_name};

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// As root, the server's commands run as the `postgres` user: PostgreSQL refuses root.
    as_postgres: bool,
}

impl PgServer {
    /// Creates a cluster and starts it; `None` (after saying why) when PostgreSQL's programs are
    /// not installed and this is not CI.
    pub fn start_new() -> Option<PgServer> {
        let bin = PathBuf::from(std::env::var("WSGATE_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()));
        if !bin.join("pg_ctl").is_file() {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("PostgreSQL programs are required under CI=true; none in {}", bin.display());
            }
            eprintln!("skipped: no pg_ctl in {} (set WSGATE_PG_BIN)", bin.display());
            return None;
        }
        let as_postgres = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let dir = std::env::temp_dir().join(unique_name("wsgate_pg"));
        std::fs::create_dir_all(&dir).expect("create the server directory");
        let server = PgServer { dir, bin, port: free_port(), as_postgres };
        if as_postgres {
            server.check(Command::new("chown").args(["postgres:postgres"]).arg(&server.dir), "chown");
        }
        let data = server.data();
        server.run("initdb", &["-D", path(&data), "-A", "trust", "-U", "postgres", "--no-sync"]);
        server.start();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits (at most 30 s) until it accepts connections.
    pub fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, path(&self.dir));
        let log = self.dir.join("log");
        self.run("pg_ctl", &["-D", path(&self.data()), "-o", &options, "-l", path(&log), "-w", "-t", "30", "start"]);
    }

    /// Stops the server the hard way (like a crash: no checkpoint, clients cut off) and waits
    /// (at most 30 s) until it is gone.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", path(&self.data()), "-m", "immediate", "-w", "-t", "30", "stop"]);
    }

    /// Freezes every process of the server (SIGSTOP): connections stay open and the kernel
    /// still accepts new ones, but nothing answers — a hung server, or a network black hole.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Sends `signal` to the postmaster and its children; nothing when it is not running. A
    /// child may exit between `ps` and `kill`: `kill` still signals the others, so its exit
    /// status is not checked.
    fn signal(&self, signal: &str) {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = pid_file.lines().next().filter(|pid| !pid.is_empty()) else { return };
        let children = Command::new("ps").args(["-o", "pid=", "--ppid", postmaster]).output().expect("run ps");
        let children = String::from_utf8_lossy(&children.stdout).into_owned();
        let _ = Command::new("kill").arg(signal).arg(postmaster).args(children.split_whitespace()).output();
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        self.check(self.command(program).args(args), program);
    }

    fn check(&self, command: &mut Command, what: &str) {
        let output = command.output().unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            panic!(
                "{what} failed: {}\n{}\n{}\nserver log:\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // A frozen server would not act on the stop signal.
        self.signal("-CONT");
        let pid_file = self.data().join("postmaster.pid");
        if pid_file.exists() {
            let stopped = self
                .command("pg_ctl")
                .args(["-D", path(&self.data()), "-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
            if !stopped.is_ok_and(|out| out.status.success()) {
                eprintln!("could not stop the test's PostgreSQL in {}", self.dir.display());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
