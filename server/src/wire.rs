//! Encoding of the server's own types inside protobuf `bytes` fields.
//!
//! Raft messages and forwarded shard requests travel between nodes of the
//! same version as postcard, a compact serde format; the protobuf envelope
//! (see `cairn-proto`) carries the group id and routing.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Encodes `value` for the wire.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Wire(format!("encode: {e}")))
}

/// Decodes a value encoded by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Wire(format!("decode: {e}")))
}
