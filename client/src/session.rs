//! The client's side of exactly-once writes.
//!
//! Every client picks a random id; every write call takes the next sequence
//! number and keeps it across all its attempts, so the shard's state
//! machine recognises a retry and answers it with the first reply (see the
//! server's `sessions` module). Each write also tells the server the lowest
//! sequence number still in flight, below which replies may be forgotten.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use cairn_proto::kv::WriteSession;

/// Sequence numbers of one client.
#[derive(Debug)]
pub(crate) struct Session {
    client_id: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    in_flight: BTreeSet<u64>,
}

/// One write's sequence number, released when the call ends.
pub(crate) struct Ticket {
    session: Arc<Session>,
    seq: u64,
}

impl Session {
    pub(crate) fn new() -> Self {
        Session {
            client_id: rand::random(),
            state: Mutex::default(),
        }
    }

    /// A sequence number for a new write call.
    pub(crate) fn begin(self: &Arc<Self>) -> Ticket {
        let mut state = self.state.lock().expect("session lock");
        let seq = state.next;
        state.next += 1;
        state.in_flight.insert(seq);
        Ticket {
            session: self.clone(),
            seq,
        }
    }
}

impl Ticket {
    /// The tag an attempt carries.
    pub(crate) fn tag(&self) -> WriteSession {
        let state = self.session.state.lock().expect("session lock");
        WriteSession {
            client_id: self.session.client_id,
            seq: self.seq,
            acked_below: state.in_flight.first().copied().unwrap_or(state.next),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.session
            .state
            .lock()
            .expect("session lock")
            .in_flight
            .remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_below_is_the_oldest_write_still_in_flight() {
        let session = Arc::new(Session::new());
        let first = session.begin();
        let second = session.begin();
        assert_eq!((second.tag().seq, second.tag().acked_below), (1, 0));
        drop(first);
        assert_eq!(second.tag().acked_below, 1);
        drop(second);
        assert_eq!(session.begin().tag().acked_below, 2);
    }
}
