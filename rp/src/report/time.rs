//! Points in time in a report: UTC, whole seconds, RFC 3339 in JSON.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::texts::Lang;

/// A point in time in UTC with whole seconds (years 1970 to 9999), written
/// `2026-12-07T14:36:51Z` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcTime(der::DateTime);

/// A time outside 1970..=9999 or a string that is not `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ between 1970 and 9999")]
pub struct InvalidTime;

impl UtcTime {
    /// The time `secs` seconds after the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> Result<Self, InvalidTime> {
        der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
            .map(Self)
            .map_err(|_| InvalidTime)
    }

    /// The given system time, sub-second part dropped.
    pub fn from_system_time(time: SystemTime) -> Result<Self, InvalidTime> {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| InvalidTime)?;
        Self::from_unix_secs(secs.as_secs())
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> u64 {
        self.0.unix_duration().as_secs()
    }

    /// The time as people read it in `lang`: `07.12.2026, 14:36:51 UTC` in German,
    /// `2026-12-07 14:36:51 UTC` in English.
    pub fn display(&self, lang: Lang) -> String {
        let t = &self.0;
        match lang {
            Lang::De => format!(
                "{:02}.{:02}.{:04}, {:02}:{:02}:{:02} UTC",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minutes(),
                t.seconds()
            ),
            Lang::En => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minutes(),
                t.seconds()
            ),
        }
    }
}

impl fmt::Display for UtcTime {
    /// RFC 3339, `2026-12-07T14:36:51Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for UtcTime {
    type Err = InvalidTime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        der::DateTime::from_str(s)
            .map(Self)
            .map_err(|_| InvalidTime)
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
