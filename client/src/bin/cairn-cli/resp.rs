//! A blocking Redis-protocol connection, plain or TLS: send a command,
//! read its reply (RESP2, and the RESP3 types a server sends after
//! `HELLO 3`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::tls::{Tls, TlsStream};

/// The byte stream under a connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+text`.
    Simple(String),
    /// `-text`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` (None: nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None: nil array).
    Array(Option<Vec<Value>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `,`.
    Double(String),
    /// RESP3 `#`.
    Bool(bool),
    /// RESP3 `%`.
    Map(Vec<(Value, Value)>),
    /// RESP3 `~`.
    Set(Vec<Value>),
}

/// One connection to a node.
pub struct Connection {
    reader: BufReader<Stream>,
    /// `host:port` it is connected to.
    pub addr: String,
}

impl Connection {
    /// Connects to `addr` (`host:port`), over TLS when `tls` is given.
    pub fn open(addr: &str, tls: Option<&Tls>) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let stream = match tls {
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Stream::Tls(Box::new(tls.connect(host, stream)?))
            }
            None => Stream::Plain(stream),
        };
        Ok(Connection {
            reader: BufReader::new(stream),
            addr: addr.to_string(),
        })
    }

    /// Sends a command and reads its reply.
    pub fn call(&mut self, args: &[impl AsRef<[u8]>]) -> std::io::Result<Value> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            let arg = arg.as_ref();
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        let stream = self.reader.get_mut();
        stream.write_all(&out)?;
        stream.flush()?;
        self.read()
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(line.trim_end_matches("\r\n").to_string())
    }

    fn read(&mut self) -> std::io::Result<Value> {
        let line = self.line()?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad reply line {line:?}"));
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match kind {
            "+" => Value::Simple(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(number()?),
            "," => Value::Double(rest.to_string()),
            "#" => Value::Bool(rest == "t"),
            "_" => Value::Null,
            "$" | "=" => match number()? {
                -1 => Value::Bulk(None),
                n => {
                    let mut data = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(n as usize);
                    if kind == "=" {
                        data.drain(..data.len().min(4)); // "txt:"
                    }
                    Value::Bulk(Some(data))
                }
            },
            "*" | "~" | ">" => match number()? {
                -1 => Value::Array(None),
                n => {
                    let items = (0..n).map(|_| self.read()).collect::<std::io::Result<Vec<_>>>()?;
                    if kind == "~" {
                        Value::Set(items)
                    } else {
                        Value::Array(Some(items))
                    }
                }
            },
            "%" => {
                let n = number()?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    pairs.push((self.read()?, self.read()?));
                }
                Value::Map(pairs)
            }
            _ => return Err(bad()),
        })
    }
}

/// Splits a typed line into arguments the way redis-cli does: spaces
/// separate, "double quotes" take `\n \r \t \\ \" \xHH` escapes, 'single
/// quotes' take text as is. `None` for unbalanced quotes.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(args);
        };
        let mut arg = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => match chars.next()? {
                        'n' => arg.push('\n'),
                        'r' => arg.push('\r'),
                        't' => arg.push('\t'),
                        'x' => {
                            let hex: String = [chars.next()?, chars.next()?].iter().collect();
                            arg.push(u8::from_str_radix(&hex, 16).ok()? as char);
                        }
                        other => arg.push(other),
                    },
                    c => arg.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
}
