//! A store for tests that fails or stalls on demand: a RocksDB store whose
//! writes fail while `failing` is set (a full disk), and whose writes wait
//! while `held` is set (a disk that stops answering), so tests can observe
//! what the layers above do in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::{Batch, Cf, RocksStorage, Storage};
use crate::error::{Error, Result};

/// A [`RocksStorage`] with a switch for failures and one for stalls.
pub struct TestStore {
    inner: RocksStorage,
    failing: AtomicBool,
    held: Mutex<bool>,
    released: Condvar,
}

impl TestStore {
    /// A store in a new temporary directory (deleted with it), writing
    /// normally: as itself (to fail or hold it), and as the store the
    /// layers above take.
    pub fn temporary() -> (tempfile::TempDir, Arc<TestStore>, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(TestStore {
            inner: RocksStorage::open(dir.path()).expect("open the test store"),
            failing: AtomicBool::new(false),
            held: Mutex::new(false),
            released: Condvar::new(),
        });
        let storage: Arc<dyn Storage> = store.clone();
        (dir, store, storage)
    }

    /// Makes every write fail (`true`) or succeed again (`false`).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes writes wait (`true`) until released (`false`).
    pub fn hold(&self, held: bool) {
        *self.held.lock().expect("hold lock") = held;
        self.released.notify_all();
    }
}

impl Storage for TestStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(cf, key)
    }

    fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(cf, from, to, limit)
    }

    fn scan_bytes(&self, cf: Cf, from: &[u8], to: &[u8], bytes: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_bytes(cf, from, to, bytes)
    }

    fn last(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.inner.last(cf, from, to)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let held = self.held.lock().expect("hold lock");
        drop(self.released.wait_while(held, |held| *held).expect("hold lock"));
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Storage("the disk is full".into()));
        }
        self.inner.write(batch)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn path(&self) -> &std::path::Path {
        self.inner.path()
    }
}
