//! Sizes as users write and read them: parsing `10G`, `1.5GiB`, `512M`, `20%` and printing bytes.
//!
//! One convention everywhere (flags, sweep.toml, output, Python): every unit is binary.
//! `K`, `KB`, `KiB` mean 2^10; `M`, `MB`, `MiB` 2^20; `G`, `GB`, `GiB` 2^30; `T`, `TB`, `TiB`
//! 2^40 — the convention of `docker -m`, Slurm's `--mem` and `free -h`. Units are case-insensitive;
//! a bare number is bytes.

use std::fmt;

/// A size as written: absolute bytes, or a percentage of some reference (the memory limit).
/// In JSON (`sweep.json`): `{"bytes": N}` or `{"percent": P}`; the `{"Bytes": N}` of earlier
/// versions still reads.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SizeSpec {
    #[serde(rename = "bytes", alias = "Bytes")]
    Bytes(u64),
    #[serde(rename = "percent", alias = "Percent")]
    Percent(f64),
}

impl SizeSpec {
    /// Resolve against `reference` (the limit the percentage is of).
    pub fn resolve(self, reference: u64) -> u64 {
        match self {
            SizeSpec::Bytes(b) => b,
            SizeSpec::Percent(p) => ((reference as f64) * p / 100.0).round() as u64,
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Bytes(b) => write!(f, "{}", human(*b)),
            SizeSpec::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Why a size did not parse; the message is shown after the flag's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("empty size; write e.g. 512M, 1.5G or 20%")]
    Empty,
    #[error("'{0}' is not a size; write e.g. 512M, 1.5G, 10GiB, 2000000 (bytes) or 20%")]
    Invalid(String),
    #[error("'{0}' is negative; sizes must be zero or more")]
    Negative(String),
    #[error("'{0}' is too large (more than 16 EiB)")]
    TooLarge(String),
    #[error("'{0}': a percentage must be between 0 and 100")]
    BadPercent(String),
    #[error("'{0}': a percentage is not allowed here; give an absolute size such as 2G")]
    PercentNotAllowed(String),
}

/// Parse a size that may be a percentage (`20%`).
pub fn parse_spec(input: &str) -> Result<SizeSpec, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if let Some(num) = s.strip_suffix('%') {
        let v: f64 = num
            .trim()
            .parse()
            .map_err(|_| SizeError::Invalid(input.to_string()))?;
        if !v.is_finite() || !(0.0..=100.0).contains(&v) {
            return Err(SizeError::BadPercent(input.to_string()));
        }
        return Ok(SizeSpec::Percent(v));
    }
    parse_bytes(input).map(SizeSpec::Bytes)
}

/// Parse an absolute size in bytes (`1.5G` = 1610612736).
pub fn parse_bytes(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.ends_with('%') {
        return Err(SizeError::PercentNotAllowed(input.to_string()));
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative(input.to_string()));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.matches('.').count() > 1 || num == "." {
        return Err(SizeError::Invalid(input.to_string()));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        // `human` prints PiB: what memsweep prints must read back.
        "p" | "pb" | "pib" => 1 << 50,
        _ => return Err(SizeError::Invalid(input.to_string())),
    };
    if !num.contains('.') {
        let n: u64 = num
            .parse()
            .map_err(|_| SizeError::TooLarge(input.to_string()))?;
        return n
            .checked_mul(mult)
            .ok_or_else(|| SizeError::TooLarge(input.to_string()));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| SizeError::Invalid(input.to_string()))?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(SizeError::TooLarge(input.to_string()));
    }
    Ok(bytes.round() as u64)
}

/// Print bytes for people: `300.0 MiB`, `1.50 GiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// Print bytes as a flag value that parses back to (about) the same size: `300M`, `1.5G`.
pub fn flag(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        let r = (gib * 10.0).ceil() / 10.0;
        return format!("{}G", trim_float(r));
    }
    let mib = (bytes as f64 / (1u64 << 20) as f64).ceil();
    format!("{}M", mib.max(1.0) as u64)
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_everywhere() {
        assert_eq!(parse_bytes("10G").unwrap(), 10 << 30);
        assert_eq!(parse_bytes("10GB").unwrap(), 10 << 30);
        assert_eq!(parse_bytes("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_bytes("10g").unwrap(), 10 << 30);
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5G").unwrap(), 1610612736);
        assert_eq!(parse_bytes("300MiB").unwrap(), 314572800);
        assert_eq!(parse_bytes("2000000").unwrap(), 2000000);
        assert_eq!(parse_bytes("4k").unwrap(), 4096);
        assert_eq!(parse_bytes(" 1 T ").unwrap(), 1 << 40);
        assert_eq!(parse_bytes("0").unwrap(), 0);
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        for bad in [
            "",
            "10X",
            "-5G",
            "1e999",
            "G",
            ".",
            "1.2.3G",
            "99999999999999999999",
            "abc",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(parse_bytes("-5G"), Err(SizeError::Negative("-5G".into())));
        assert!(matches!(
            parse_bytes("20000000000T"),
            Err(SizeError::TooLarge(_))
        ));
        assert!(matches!(
            parse_bytes("20%"),
            Err(SizeError::PercentNotAllowed(_))
        ));
    }

    #[test]
    fn percentages_resolve_against_the_limit() {
        assert_eq!(parse_spec("20%").unwrap(), SizeSpec::Percent(20.0));
        assert_eq!(parse_spec("20%").unwrap().resolve(1000), 200);
        assert_eq!(parse_spec("1G").unwrap().resolve(5), 1 << 30);
        assert!(parse_spec("120%").is_err());
        assert!(parse_spec("-1%").is_err());
        assert!(parse_spec("%").is_err());
    }

    #[test]
    fn printing() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(314572800), "300 MiB");
        assert_eq!(human(1610612736), "1.50 GiB");
        assert_eq!(human(20 << 20), "20.0 MiB");
        assert_eq!(flag(314572800), "300M");
        assert_eq!(flag(1610612736), "1.5G");
        assert_eq!(parse_bytes(&flag(1610612736)).unwrap(), 1610612736);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A flag value parses back to at least the size (jobs are never under-sized) and at
        /// most 1 MiB or 10% more.
        #[test]
        fn flags_parse_back(b in 0u64..(1 << 52)) {
            let p = parse_bytes(&flag(b)).unwrap();
            proptest::prop_assert!(p >= b, "{} -> {} -> {}", b, flag(b), p);
            proptest::prop_assert!(p - b <= (1u64 << 20).max(b / 10 + 1), "{} -> {}", b, flag(b));
        }

        /// What people read parses back within the rounding of three significant digits.
        #[test]
        fn human_sizes_parse_back(b in 0u64..(1 << 60)) {
            let p = parse_bytes(&human(b)).unwrap();
            let err = (p as f64 - b as f64).abs() / (b as f64).max(1.0);
            proptest::prop_assert!(err <= 0.005, "{} -> {} -> {}", b, human(b), p);
        }

        /// Every unit spelling of a whole number is exact; a size never parses negative.
        #[test]
        fn whole_numbers_with_units_are_exact(n in 0u64..1_000_000, unit in 0usize..5, case in 0usize..3) {
            let units = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)];
            let (u, shift) = units[unit];
            let spelled = match case { 0 => u.to_string(), 1 => format!("{u}iB"), _ => format!("{}b", u.to_lowercase()) };
            let spelled = if u.is_empty() { String::new() } else { spelled };
            proptest::prop_assert_eq!(parse_bytes(&format!("{n}{spelled}")).unwrap(), n << shift);
            let negative = format!("-{n}{spelled}");
            proptest::prop_assert!(parse_bytes(&negative).is_err());
        }
    }
}
