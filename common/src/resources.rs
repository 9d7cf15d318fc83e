//! Resource profiles: how much of a TaskManager a slot (or a whole
//! TaskManager) takes. Integer units throughout (milli-cores, bytes), so
//! adding and subtracting profiles is exact and matching is deterministic.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub const MIB: u64 = 1024 * 1024;

/// A concrete amount of resources (Flink's `ResourceProfile`).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceProfile {
    /// CPU in thousandths of a core: 0.5 cores is 500.
    pub cpu_millis: u64,
    pub task_heap_bytes: u64,
    pub task_off_heap_bytes: u64,
    pub managed_bytes: u64,
    pub network_bytes: u64,
    /// Extended resources by name, in whole units (e.g. `gpu = 1`).
    pub extended: BTreeMap<String, u64>,
}

/// What a requirement asks for. `Unknown` is Flink's `ResourceProfile.UNKNOWN`:
/// "any slot will do", served by a TaskManager's default slot profile.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum RequestedProfile {
    Unknown,
    Exact(ResourceProfile),
}

impl RequestedProfile {
    /// The concrete profile this request takes out of a TaskManager whose
    /// default slot is `default_slot`.
    pub fn resolve<'a>(&'a self, default_slot: &'a ResourceProfile) -> &'a ResourceProfile {
        match self {
            RequestedProfile::Unknown => default_slot,
            RequestedProfile::Exact(p) => p,
        }
    }
}

impl ResourceProfile {
    pub const ZERO: ResourceProfile = ResourceProfile {
        cpu_millis: 0,
        task_heap_bytes: 0,
        task_off_heap_bytes: 0,
        managed_bytes: 0,
        network_bytes: 0,
        extended: BTreeMap::new(),
    };

    /// A profile with only cpu and task heap set: the common case in specs and tests.
    pub fn new(cpu_millis: u64, task_heap_bytes: u64) -> Self {
        Self { cpu_millis, task_heap_bytes, ..Self::ZERO }
    }

    pub fn with_extended(mut self, name: &str, amount: u64) -> Self {
        if amount > 0 {
            self.extended.insert(name.to_owned(), amount);
        }
        self
    }

    /// All memory kinds together: what a container or process must be given.
    pub fn total_memory_bytes(&self) -> u64 {
        self.task_heap_bytes
            .saturating_add(self.task_off_heap_bytes)
            .saturating_add(self.managed_bytes)
            .saturating_add(self.network_bytes)
    }

    pub fn is_zero(&self) -> bool {
        self.cpu_millis == 0 && self.total_memory_bytes() == 0 && self.extended.values().all(|v| *v == 0)
    }

    /// True when every component of `self` is at most the same component of `other`.
    pub fn fits_in(&self, other: &ResourceProfile) -> bool {
        self.cpu_millis <= other.cpu_millis
            && self.task_heap_bytes <= other.task_heap_bytes
            && self.task_off_heap_bytes <= other.task_off_heap_bytes
            && self.managed_bytes <= other.managed_bytes
            && self.network_bytes <= other.network_bytes
            && self.extended.iter().all(|(k, v)| *v == 0 || other.extended.get(k).is_some_and(|o| v <= o))
    }

    pub fn add(&self, other: &ResourceProfile) -> ResourceProfile {
        let mut extended = self.extended.clone();
        for (k, v) in &other.extended {
            *extended.entry(k.clone()).or_insert(0) += v;
        }
        ResourceProfile {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            task_heap_bytes: self.task_heap_bytes.saturating_add(other.task_heap_bytes),
            task_off_heap_bytes: self.task_off_heap_bytes.saturating_add(other.task_off_heap_bytes),
            managed_bytes: self.managed_bytes.saturating_add(other.managed_bytes),
            network_bytes: self.network_bytes.saturating_add(other.network_bytes),
            extended,
        }
    }

    /// `self - other`, or `None` when `other` does not fit in `self`.
    pub fn checked_sub(&self, other: &ResourceProfile) -> Option<ResourceProfile> {
        if !other.fits_in(self) {
            return None;
        }
        let mut extended = self.extended.clone();
        for (k, v) in &other.extended {
            if let Some(e) = extended.get_mut(k) {
                *e -= v;
            }
        }
        extended.retain(|_, v| *v > 0);
        Some(ResourceProfile {
            cpu_millis: self.cpu_millis - other.cpu_millis,
            task_heap_bytes: self.task_heap_bytes - other.task_heap_bytes,
            task_off_heap_bytes: self.task_off_heap_bytes - other.task_off_heap_bytes,
            managed_bytes: self.managed_bytes - other.managed_bytes,
            network_bytes: self.network_bytes - other.network_bytes,
            extended,
        })
    }

    pub fn multiply(&self, n: u64) -> ResourceProfile {
        ResourceProfile {
            cpu_millis: self.cpu_millis.saturating_mul(n),
            task_heap_bytes: self.task_heap_bytes.saturating_mul(n),
            task_off_heap_bytes: self.task_off_heap_bytes.saturating_mul(n),
            managed_bytes: self.managed_bytes.saturating_mul(n),
            network_bytes: self.network_bytes.saturating_mul(n),
            extended: self.extended.iter().map(|(k, v)| (k.clone(), v.saturating_mul(n))).collect(),
        }
    }
}

impl fmt::Display for ResourceProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cpu, {} MB", format_cpu(self.cpu_millis), self.total_memory_bytes() / MIB)?;
        for (k, v) in &self.extended {
            write!(f, ", {k}={v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceProfile({self})")
    }
}

pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{}", millis / 1000)
    } else {
        let s = format!("{}.{:03}", millis / 1000, millis % 1000);
        s.trim_end_matches('0').to_owned()
    }
}

/// Parses a cpu amount such as `2`, `0.5` or `1.25` into milli-cores.
pub fn parse_cpu(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 3 {
        return Err(format!("`{s}` is not a cpu amount; write cores with at most 3 decimals, e.g. 0.5 or 2"));
    }
    let bad = || format!("`{s}` is not a cpu amount; write cores with at most 3 decimals, e.g. 0.5 or 2");
    let w: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let f: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().map_err(|_| bad())? };
    w.checked_mul(1000).and_then(|w| w.checked_add(f)).ok_or_else(bad)
}

/// A size as people write it: `2 GiB`, `512 MiB`, `64 KiB`, `100 bytes`
/// (the largest unit that divides it exactly, so nothing is rounded away).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// Parses a memory size such as `512m`, `2g`, `1024k`, `64mb` or a plain
/// number of bytes (Flink's `MemorySize` syntax, case-insensitive).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a memory size; write e.g. 512m, 2g or 1048576 (bytes)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1024 * MIB,
        "t" | "tb" | "tib" => 1024 * 1024 * MIB,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_exact_and_sub_refuses_what_does_not_fit() {
        let tm = ResourceProfile::new(4000, 8 * 1024 * MIB).with_extended("gpu", 1);
        let slot = ResourceProfile::new(1500, 2 * 1024 * MIB);
        let left = tm.checked_sub(&slot).unwrap();
        assert_eq!(left.cpu_millis, 2500);
        assert_eq!(left.extended.get("gpu"), Some(&1));
        assert_eq!(left.add(&slot), tm);
        let gpu = ResourceProfile::new(100, MIB).with_extended("gpu", 2);
        assert!(tm.checked_sub(&gpu).is_none());
        assert!(!gpu.fits_in(&tm));
        assert!(ResourceProfile::new(100, MIB).with_extended("gpu", 1).fits_in(&tm));
    }

    #[test]
    fn parses_flink_style_sizes() {
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("1.25"), Ok(1250));
        assert!(parse_cpu("1.2345").is_err());
        assert!(parse_cpu("x").is_err());
        assert_eq!(parse_memory("256m"), Ok(256 * MIB));
        assert_eq!(parse_memory("2G"), Ok(2048 * MIB));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert!(parse_memory("2 parsecs").is_err());
        assert_eq!(format_cpu(500), "0.5");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_size(2 << 30), "2 GiB");
        assert_eq!(format_size(1536 * MIB), "1536 MiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
