//! `cairn-cli`: a command line for Cairn that works like redis-cli.
//!
//! `cairn-cli [-h host] [-p port] [-a password] [--user name] [-n db] [-c]
//! [-r repeat] [-i seconds] [-x] [-e] [--raw | --no-raw] [--tls [--cacert
//! file]] [command ...]` runs one command (or, with none, a REPL with
//! history, command-name completion and hints from history), printing
//! replies the way redis-cli does: quoted and typed on a terminal, bare
//! (`--raw`) when the output is piped, so scripts written for redis-cli
//! read the same text. `-c` follows `-MOVED` redirections to shard
//! leaders. `cairn-cli admin status|failover|failovers|rpo|drill` talks to
//! the node's Admin service (see `admin.rs`).

mod admin;
mod format;
mod resp;
mod tls;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use resp::{Connection, Value};
use rustyline::completion::{Completer, Pair};
use rustyline::hint::HistoryHinter;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

/// redis-cli's options (`-h` is the host, as there; help is `--help`).
#[derive(Parser)]
#[command(name = "cairn-cli", version, disable_help_flag = true)]
struct Args {
    /// Server host.
    #[arg(short = 'h', default_value = "127.0.0.1")]
    host: String,
    /// Server port (the node's Redis-protocol port).
    #[arg(short = 'p', default_value_t = 6379)]
    port: u16,
    /// Password (`AUTH`).
    #[arg(short = 'a', long = "pass")]
    password: Option<String>,
    /// User name for `AUTH`.
    #[arg(long)]
    user: Option<String>,
    /// Database number (`SELECT`; Cairn has database 0 only).
    #[arg(short = 'n')]
    db: Option<i64>,
    /// Cluster mode: follow `-MOVED` to the shard leader.
    #[arg(short = 'c')]
    cluster: bool,
    /// Run the command this many times (-1: until interrupted).
    #[arg(short = 'r', default_value_t = 1, allow_negative_numbers = true)]
    repeat: i64,
    /// Seconds to wait between repeats.
    #[arg(short = 'i')]
    interval: Option<f64>,
    /// Print bare values, one per line (the default when the output is
    /// not a terminal).
    #[arg(long)]
    raw: bool,
    /// Print replies as on a terminal even when the output is piped.
    #[arg(long, conflicts_with = "raw")]
    no_raw: bool,
    /// Read the command's last argument from standard input.
    #[arg(short = 'x')]
    stdin_arg: bool,
    /// Exit with status 1 when a command answers an error.
    #[arg(short = 'e')]
    exit_on_error: bool,
    /// Connect over TLS.
    #[arg(long)]
    tls: bool,
    /// CA certificates (PEM) to check the server's certificate with, for
    /// `--tls` (default: the system's trusted roots).
    #[arg(long, requires = "tls")]
    cacert: Option<std::path::PathBuf>,
    /// The node's gRPC port for `admin` (default: the RESP port + 2, as in
    /// `cairn-server dev`).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The command and its arguments, or `admin status|failover [GROUP to]
    /// REGION [force]|failovers|rpo|drill [GROUP]`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.command.first().is_some_and(|c| c.eq_ignore_ascii_case("admin")) {
        let port = args.grpc_port.unwrap_or(args.port.saturating_add(2));
        return admin::run(&format!("http://{}:{port}", args.host), &args.command[1..]);
    }
    let mut command: Vec<Vec<u8>> = args.command.iter().map(|a| a.clone().into_bytes()).collect();
    if args.stdin_arg {
        let mut input = Vec::new();
        if let Err(err) = std::io::stdin().read_to_end(&mut input) {
            eprintln!("cairn-cli: -x: cannot read standard input: {err}");
            return ExitCode::from(1);
        }
        command.push(input);
    }
    let mut session = match Session::open(&args) {
        Ok(session) => session,
        Err(err) => {
            eprintln!("Could not connect to Cairn at {}:{}: {err}", args.host, args.port);
            return ExitCode::from(1);
        }
    };
    if command.is_empty() {
        session.repl();
        return ExitCode::SUCCESS;
    }
    let mut round = 0;
    while args.repeat < 0 || round < args.repeat {
        round += 1;
        match session.run(&command) {
            Ok(failed) if failed && args.exit_on_error => return ExitCode::from(1),
            Ok(_) => {}
            Err(err) => {
                eprintln!("cairn-cli: {err}");
                return ExitCode::from(1);
            }
        }
        if let Some(seconds) = args.interval {
            std::thread::sleep(Duration::from_secs_f64(seconds.max(0.0)));
        }
    }
    ExitCode::SUCCESS
}

/// A connection with the options that shape it.
struct Session {
    conn: Connection,
    tls: Option<tls::Tls>,
    raw: bool,
    cluster: bool,
    /// Commands sent after (re)connecting: AUTH, SELECT, READWRITE.
    setup: Vec<Vec<String>>,
}

impl Session {
    fn open(args: &Args) -> std::io::Result<Session> {
        let mut setup = Vec::new();
        if let Some(password) = &args.password {
            let mut auth = vec!["AUTH".to_string()];
            auth.extend(args.user.clone());
            auth.push(password.clone());
            setup.push(auth);
        }
        if let Some(db) = args.db {
            setup.push(vec!["SELECT".into(), db.to_string()]);
        }
        if args.cluster {
            // Marks the connection cluster-aware: leaders answer, others redirect.
            setup.push(vec!["READWRITE".into()]);
        }
        let tls = if args.tls {
            Some(tls::Tls::new(args.cacert.as_deref())?)
        } else {
            None
        };
        let mut session = Session {
            conn: Connection::open(&format!("{}:{}", args.host, args.port), tls.as_ref())?,
            tls,
            raw: args.raw || (!args.no_raw && !std::io::stdout().is_terminal()),
            cluster: args.cluster,
            setup,
        };
        session.prepare()?;
        Ok(session)
    }

    fn prepare(&mut self) -> std::io::Result<()> {
        for command in self.setup.clone() {
            if let Value::Error(err) = self.conn.call(&command)? {
                eprintln!("{}: {err}", command[0]);
            }
        }
        Ok(())
    }

    /// Runs one command, following redirections in cluster mode, and
    /// prints its reply; whether the reply was an error.
    fn run(&mut self, command: &[Vec<u8>]) -> std::io::Result<bool> {
        let mut reply = self.conn.call(command)?;
        for _ in 0..5 {
            let Value::Error(err) = &reply else { break };
            let Some(target) = err.strip_prefix("MOVED ").filter(|_| self.cluster) else {
                break;
            };
            let (slot, addr) = target.split_once(' ').unwrap_or(("?", target));
            // Like redis-cli, only a person at a terminal is told.
            if std::io::stdout().is_terminal() {
                println!("-> Redirected to slot [{slot}] located at {addr}");
            }
            self.conn = Connection::open(addr, self.tls.as_ref())?;
            self.prepare()?;
            reply = self.conn.call(command)?;
        }
        let mut text = if self.raw {
            format::raw(&reply)
        } else {
            format::human(&reply).into_bytes()
        };
        text.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&text)?;
        out.flush()?;
        Ok(matches!(reply, Value::Error(_)))
    }

    fn repl(&mut self) {
        let names = match self.conn.call(&["COMMAND", "LIST"]) {
            Ok(Value::Array(Some(items))) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Bulk(Some(name)) => Some(String::from_utf8_lossy(&name).to_uppercase()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let Ok(mut editor) = Editor::<Prompt, DefaultHistory>::new() else {
            eprintln!("cairn-cli: this terminal cannot run the REPL");
            return;
        };
        editor.set_helper(Some(Prompt {
            names,
            hinter: HistoryHinter::new(),
        }));
        let history = std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cairncli_history"));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        loop {
            let prompt = format!("{}> ", self.conn.addr);
            let Ok(line) = editor.readline(&prompt) else { break };
            let Some(words) = resp::split(&line) else {
                println!("Invalid argument(s)");
                continue;
            };
            if words.is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(line.as_str());
            if words[0].eq_ignore_ascii_case("quit") || words[0].eq_ignore_ascii_case("exit") {
                break;
            }
            if words[0].eq_ignore_ascii_case("help") {
                self.help(words.get(1));
                continue;
            }
            let words: Vec<Vec<u8>> = words.into_iter().map(String::into_bytes).collect();
            if let Err(err) = self.run(&words) {
                println!("Error: {err}");
                match Connection::open(&self.conn.addr.clone(), self.tls.as_ref()) {
                    Ok(conn) => {
                        self.conn = conn;
                        let _ = self.prepare();
                    }
                    Err(err) => println!("Could not reconnect: {err}"),
                }
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
    }
}

impl Session {
    /// `help` in the REPL: how to use it, or `help <command>`: the
    /// server's own description of a command (`COMMAND DOCS`).
    fn help(&mut self, command: Option<&String>) {
        let Some(name) = command else {
            println!("cairn-cli {}", env!("CARGO_PKG_VERSION"));
            println!("To get help about a command, type \"help <command>\"");
            println!("Press Tab to complete command names; \"quit\" leaves.");
            return;
        };
        let text = |value: &Value| String::from_utf8_lossy(&format::raw(value)).into_owned();
        let docs = self.conn.call(&["COMMAND", "DOCS", name.as_str()]);
        let fields = match docs {
            Ok(Value::Array(Some(items))) => items.into_iter().nth(1),
            Ok(Value::Map(pairs)) => pairs.into_iter().next().map(|(_, doc)| doc),
            _ => None,
        };
        let pairs: Vec<(String, String)> = match fields {
            Some(Value::Array(Some(flat))) => flat
                .chunks(2)
                .filter_map(|kv| Some((text(kv.first()?), text(kv.get(1)?))))
                .collect(),
            Some(Value::Map(pairs)) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
            _ => Vec::new(),
        };
        if pairs.is_empty() {
            println!("No help for \"{name}\": the server does not know that command.");
            return;
        }
        println!("\n  {}", name.to_uppercase());
        for (key, value) in pairs {
            println!("  {key}: {value}");
        }
        println!();
    }
}

/// The REPL's helper: command names complete, history hints.
#[derive(Helper, Highlighter, Validator, Hinter)]
struct Prompt {
    names: Vec<String>,
    #[rustyline(Hinter)]
    hinter: HistoryHinter,
}

impl Completer for Prompt {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = &line[..pos];
        if typed.contains(' ') {
            return Ok((pos, Vec::new()));
        }
        let upper = typed.to_uppercase();
        let found = self
            .names
            .iter()
            .filter(|name| name.starts_with(&upper))
            .map(|name| Pair {
                display: name.clone(),
                replacement: name.clone(),
            })
            .collect();
        Ok((0, found))
    }
}

#[cfg(test)]
mod tests {
    use super::resp::split;

    #[test]
    fn lines_split_like_redis_cli() {
        assert_eq!(split("set k v").unwrap(), ["set", "k", "v"]);
        assert_eq!(split("set \"a b\" 'c d'").unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split("set k \"x\\ny\\x41\"").unwrap(), ["set", "k", "x\nyA"]);
        assert!(split("set \"open").is_none());
        assert!(split("").unwrap().is_empty());
    }
}
