//! Sizes in bytes, as a config writes them: a number of bytes, or `512KiB`, `16MiB`, `1GB`.

use serde::{Deserialize, Deserializer};

/// A size from the config, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl Size {
    /// Parses `"16MiB"`, `"512 KB"`, `"1048576"`; units are B, KB/MB/GB (powers of 1000) and
    /// KiB/MiB/GiB (powers of 1024), in any case.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => {
                return Err(format!(
                    "unsupported size: {text:?} (write 16MiB, 512KB or bytes)"
                ))
            }
        };
        number
            .parse::<f64>()
            .ok()
            .map(|n| n * scale)
            .filter(|bytes| bytes.is_finite() && *bytes >= 1.0 && *bytes <= usize::MAX as f64)
            .map(|bytes| Size(bytes as usize))
            .ok_or_else(|| format!("unsupported size: {text:?} (write 16MiB, 512KB or bytes)"))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: usize = 1024 * 1024;
        if self.0.is_multiple_of(MIB) {
            write!(f, "{} MiB", self.0 / MIB)
        } else if self.0.is_multiple_of(1024) {
            write!(f, "{} KiB", self.0 / 1024)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .map(Size)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid size: {n}"))),
            Raw::Text(text) => Size::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(Size::parse("16MiB").unwrap().0, 16 * 1024 * 1024);
        assert_eq!(Size::parse("512 KB").unwrap().0, 512_000);
        assert_eq!(Size::parse("1.5kib").unwrap().0, 1536);
        assert_eq!(Size::parse("100").unwrap().0, 100);
        assert!(Size::parse("lots").is_err());
        assert!(Size::parse("0").is_err());
        assert!(Size::parse("-1MB").is_err());
        assert_eq!(Size(16 * 1024 * 1024).to_string(), "16 MiB");
    }
}
