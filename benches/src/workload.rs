//! What the load is made of: the YCSB-style mixes, and how keys are drawn.
//!
//! A workload is a read share plus the kind of write: `get` (reads only),
//! `set` (writes only), `a` (50 % reads, 50 % updates), `b` (95 / 5), `c`
//! (reads only, as YCSB names it) and `f` (50 % reads, 50 %
//! read-modify-write, done by `INCR` so the server does it atomically).
//! Keys are `key:<n>` zero-padded to the key size, drawn uniformly or from
//! a zipfian distribution over the key space (a few hot keys, a long tail).

use clap::ValueEnum;
use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

/// A mix of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Reads only (`GET`).
    Get,
    /// Writes only (`SET`).
    Set,
    /// YCSB A: 50 % reads, 50 % updates.
    A,
    /// YCSB B: 95 % reads, 5 % updates.
    B,
    /// YCSB C: reads only.
    C,
    /// YCSB F: 50 % reads, 50 % read-modify-write (`INCR`).
    F,
}

impl Workload {
    /// Share of operations that are reads, in percent.
    fn read_percent(self) -> u32 {
        match self {
            Workload::Get | Workload::C => 100,
            Workload::Set => 0,
            Workload::A | Workload::F => 50,
            Workload::B => 95,
        }
    }
}

/// How keys are drawn from the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian (exponent 0.99, YCSB's): a few keys take most operations.
    Zipfian,
}

/// One operation to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read a key.
    Get(Vec<u8>),
    /// Write a key.
    Set(Vec<u8>),
    /// Read-modify-write a counter key.
    Incr(Vec<u8>),
}

impl Op {
    /// The key it touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Get(key) | Op::Set(key) | Op::Incr(key) => key,
        }
    }
}

/// Draws operations for one connection.
pub struct Generator {
    workload: Workload,
    keys: u64,
    key_size: usize,
    zipf: Option<Zipf<f64>>,
    rng: SmallRng,
}

impl Generator {
    /// A generator over `keys` keys of `key_size` bytes.
    pub fn new(workload: Workload, distribution: KeyDistribution, keys: u64, key_size: usize, seed: u64) -> Self {
        let zipf = match distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipfian => Some(Zipf::new(keys as f64, 0.99).expect("keys > 0 and exponent > 0")),
        };
        Generator {
            workload,
            keys,
            key_size,
            zipf,
            rng: rand::SeedableRng::seed_from_u64(seed),
        }
    }

    /// The name of key number `n`: `key:` then `n`, zero-padded to the
    /// key size (longer when the size is too small for the number).
    pub fn key_name(n: u64, key_size: usize) -> Vec<u8> {
        let mut number = itoa::Buffer::new();
        let digits = number.format(n).as_bytes();
        let padded = key_size.max(4 + digits.len());
        let mut key = Vec::with_capacity(padded);
        key.extend_from_slice(b"key:");
        key.resize(padded - digits.len(), b'0');
        key.extend_from_slice(digits);
        key
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let n = match &self.zipf {
            Some(zipf) => zipf.sample(&mut self.rng) as u64 - 1,
            None => self.rng.random_range(0..self.keys),
        };
        let key = Self::key_name(n, self.key_size);
        if self.rng.random_range(0..100) < self.workload.read_percent() {
            Op::Get(key)
        } else if self.workload == Workload::F {
            Op::Incr(key)
        } else {
            Op::Set(key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_and_keys_are_as_named() {
        let mut generator = Generator::new(Workload::B, KeyDistribution::Uniform, 1000, 16, 7);
        let ops: Vec<Op> = (0..10_000).map(|_| generator.next_op()).collect();
        let reads = ops.iter().filter(|op| matches!(op, Op::Get(_))).count();
        assert!((9_300..9_700).contains(&reads), "{reads} reads of 10000");
        assert!(ops.iter().all(|op| op.key().len() == 16));
        let mut generator = Generator::new(Workload::F, KeyDistribution::Zipfian, 1000, 16, 7);
        let ops: Vec<Op> = (0..10_000).map(|_| generator.next_op()).collect();
        assert!(ops.iter().all(|op| !matches!(op, Op::Set(_))));
        let hottest = ops.iter().filter(|op| op.key() == Generator::key_name(0, 16)).count();
        assert!(hottest > 500, "zipfian makes key 0 hot: {hottest}");
        assert_eq!(Generator::key_name(42, 16), b"key:000000000042");
        assert_eq!(Generator::key_name(123456, 8), b"key:123456", "longer than the size");
    }
}
