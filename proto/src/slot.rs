//! Hash slots, exactly as Redis Cluster computes them.
//!
//! A key maps to one of [`SLOTS`] slots by CRC16 (XMODEM) of the key, or of
//! the part between the first `{` and the next `}` when that part is not
//! empty (a "hash tag", so that related keys land together). Shards own
//! contiguous slot ranges; [`SlotMap`] divides the slots evenly.

/// Number of hash slots (Redis Cluster's 16384).
pub const SLOTS: u16 = 16384;

/// CRC16/XMODEM (polynomial 0x1021), sixteen bytes per table step.
const XMODEM: crc::Crc<u16, crc::Table<16>> = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

/// CRC16/XMODEM, the checksum Redis Cluster uses for slots.
pub fn crc16(data: &[u8]) -> u16 {
    XMODEM.checksum(data)
}

/// The slot of a key, honouring `{hash tags}`.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS
}

/// Splits the slots into `shards` contiguous, nearly equal ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotMap {
    shards: u16,
}

impl SlotMap {
    /// A map of `shards` shards (1..=16384, checked by the config).
    pub fn new(shards: u16) -> Self {
        assert!((1..=SLOTS).contains(&shards), "shards out of range");
        SlotMap { shards }
    }

    /// How many shards there are.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard that owns `slot`.
    pub fn shard_of_slot(&self, slot: u16) -> u64 {
        (u32::from(slot) * u32::from(self.shards) / u32::from(SLOTS)) as u64
    }

    /// The shard that owns `key`.
    pub fn shard_of_key(&self, key: &[u8]) -> u64 {
        self.shard_of_slot(key_slot(key))
    }

    /// The inclusive slot range of `shard`.
    pub fn slot_range(&self, shard: u64) -> (u16, u16) {
        let n = u32::from(self.shards);
        let first = (shard as u32 * u32::from(SLOTS)).div_ceil(n);
        let next = ((shard as u32 + 1) * u32::from(SLOTS)).div_ceil(n);
        (first as u16, (next - 1) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_group_keys() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // An empty tag hashes the whole key.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        // Only the first `{` counts.
        assert_eq!(key_slot(b"foo{{bar}}zap"), crc16(b"{bar") % SLOTS);
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn ranges_cover_every_slot_once() {
        for shards in [1u16, 3, 8, 7, 100, 16384] {
            let map = SlotMap::new(shards);
            let mut next = 0u32;
            for shard in 0..u64::from(shards) {
                let (first, last) = map.slot_range(shard);
                assert_eq!(u32::from(first), next, "shards={shards} shard={shard}");
                assert!(last >= first);
                for slot in [first, last] {
                    assert_eq!(map.shard_of_slot(slot), shard);
                }
                next = u32::from(last) + 1;
            }
            assert_eq!(next, u32::from(SLOTS));
        }
    }
}
