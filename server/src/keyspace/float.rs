//! Redis's `long double` arithmetic, for `INCRBYFLOAT` and `HINCRBYFLOAT`.
//!
//! Redis adds floats as the C `long double` of x86-64: the 80-bit x87
//! extended format, 64 significant bits. It reads numbers with `strtold`
//! and writes the result with `printf("%.17Lf")`, trailing zeros removed.
//! Client libraries compare those strings, so an `f64` is not enough:
//! `0.1 + 0.2` is `0.3` in Redis but `0.30000000000000004` in `f64`.
//!
//! The arithmetic here is the same format in software (`rustc_apfloat`,
//! correctly rounded like the hardware), so the result is also the same on
//! every replica whatever CPU it runs on, and the printing is exact: the
//! binary value is expanded into decimal with big integers and rounded
//! half to even at 17 decimals, as glibc's `printf` does.

use bytes::Bytes;
use num_bigint::BigUint;
use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Status};

/// The longest number Redis reads or writes as a long double
/// (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// Decimals printed before trailing zeros are removed.
const DECIMALS: u32 = 17;

/// An x87 extended-precision number, as Redis's `long double`.
#[derive(Debug, Clone, Copy)]
pub struct LongDouble(X87DoubleExtended);

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// The sum, rounded to nearest as the hardware does.
    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble((self.0 + other.0).value)
    }
}

impl LongDouble {
    /// Zero, the value of a missing key or field.
    pub const ZERO: LongDouble = LongDouble(X87DoubleExtended::ZERO);

    /// Reads a number as Redis's `string2ld` does: `strtold` syntax over
    /// the whole text (no leading space, nothing after), no NaN, and no
    /// overflow or underflow to zero. `inf` is a valid number here.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        let text = std::str::from_utf8(text).ok()?;
        if text.is_empty() || text.len() >= MAX_CHARS || text.starts_with(|c: char| c.is_ascii_whitespace()) {
            return None;
        }
        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
            let infinity = X87DoubleExtended::INFINITY;
            return Some(LongDouble(if negative { -infinity } else { infinity }));
        }
        // `strtold` stops before an exponent without digits ("1e", "1e+"),
        // leaving text unread, which Redis rejects.
        let bad_ends = unsigned.ends_with(['e', 'E', '+', '-']) && !unsigned.starts_with("0x");
        if bad_ends || !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let parsed = X87DoubleExtended::from_str_r(text, rustc_apfloat::Round::NearestTiesToEven).ok()?;
        let out_of_range = parsed.status.contains(Status::OVERFLOW)
            || parsed.status.contains(Status::UNDERFLOW) && parsed.value.is_zero();
        (!out_of_range && !parsed.value.is_nan()).then_some(LongDouble(parsed.value))
    }

    /// Neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    /// The number as Redis prints it (`ld2string(…, LD_STR_HUMAN)`):
    /// `%.17Lf` with trailing zeros and a trailing dot removed, `-0` as `0`.
    /// `None` for a number that is not finite or longer than Redis prints.
    pub fn to_human(self) -> Option<Bytes> {
        if !self.is_finite() {
            return None;
        }
        let bits = self.0.to_bits();
        let negative = bits >> 79 & 1 == 1;
        let biased_exponent = (bits >> 64 & 0x7fff) as i64;
        let significand = BigUint::from(bits as u64);
        // value = significand × 2^exponent (a denormal has exponent field 0
        // and the same scale as the smallest normal).
        let exponent = biased_exponent.max(1) - 16383 - 63;
        let scaled = significand * BigUint::from(10u32).pow(DECIMALS);
        let units = if exponent >= 0 {
            scaled << exponent as u64
        } else {
            let shift = exponent.unsigned_abs();
            let quotient = &scaled >> shift;
            let remainder = &scaled - (&quotient << shift);
            let twice = remainder << 1u32;
            let half_way = BigUint::from(1u32) << shift;
            let round_up = twice > half_way || twice == half_way && quotient.bit(0);
            if round_up { quotient + 1u32 } else { quotient }
        };
        let mut digits = units.to_string();
        if digits.len() <= DECIMALS as usize {
            digits.insert_str(0, &"0".repeat(DECIMALS as usize + 1 - digits.len()));
        }
        let point = digits.len() - DECIMALS as usize;
        let fraction = digits[point..].trim_end_matches('0');
        let mut text = String::with_capacity(digits.len() + 2);
        let zero = digits[..point] == *"0" && fraction.is_empty();
        if negative && !zero {
            text.push('-');
        }
        text.push_str(&digits[..point]);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(fraction);
        }
        (text.len() < MAX_CHARS).then(|| Bytes::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        String::from_utf8((a + b).to_human().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("-1", "1"), "0");
        assert_eq!(sum("-0.5", "0"), "-0.5");
        assert_eq!(sum("3", "0x1p-2"), "3.25");
        // Past 17 decimals the value rounds half to even, as glibc does.
        assert_eq!(sum("0.000003814697265625", "0"), "0.00000381469726562");
        assert_eq!(sum("1e-18", "0"), "0");
        assert_eq!(sum("1e18", "1"), "1000000000000000001");
    }

    #[test]
    fn parse_accepts_what_string2ld_accepts() {
        for good in [
            "1",
            "-1.5",
            "+2",
            ".5",
            "5.",
            "1e3",
            "1E-3",
            "inf",
            "-Infinity",
            "0e-9999",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "", " 1", "1 ", "abc", "1e", "1e+", "nan", "1e99999", "1e-99999", "--1", "e5", ".",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn infinity_is_not_printed() {
        assert!(LongDouble::parse(b"inf").unwrap().to_human().is_none());
    }
}
