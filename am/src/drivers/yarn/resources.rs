//! Translations between our vocabulary and YARN's: a [`WorkerSpec`] becomes a
//! container capability; URLs become YARN's URL records.

use common::resources::MIB;
use hadoop::yarn::{Resource, YarnUrl};

use crate::resource_manager::worker::WorkerSpec;

/// YARN's name of the GPU resource type; ours is `gpu`.
pub const YARN_GPU: &str = "yarn.io/gpu";

/// The container a TaskManager of `spec` needs: memory in MB rounded up,
/// vcores rounded up (at least one of each), `gpu` as `yarn.io/gpu`, other
/// extended resources under their own names.
pub fn capability(spec: &WorkerSpec) -> Resource {
    let memory_mb = spec.total.total_memory_bytes().div_ceil(MIB).max(1);
    let vcores = spec.total.cpu_millis.div_ceil(1000).max(1);
    let mut r = Resource::new(i64::try_from(memory_mb).unwrap_or(i64::MAX), i32::try_from(vcores).unwrap_or(i32::MAX));
    for (name, amount) in &spec.total.extended {
        if *amount > 0 {
            let yarn_name = if name == "gpu" { YARN_GPU } else { name.as_str() };
            r.extended.insert(yarn_name.to_string(), i64::try_from(*amount).unwrap_or(i64::MAX));
        }
    }
    r
}

/// Why `ask` cannot be had from a scheduler whose largest container is `max`,
/// or `None` when it fits. Resource types the RM did not report count as 0.
pub fn exceeds(ask: &Resource, max: &Resource) -> Option<String> {
    let mut over = Vec::new();
    if ask.memory_mb > max.memory_mb {
        over.push(format!("memory {} MB > {} MB (yarn.scheduler.maximum-allocation-mb)", ask.memory_mb, max.memory_mb));
    }
    if ask.vcores > max.vcores {
        over.push(format!("vcores {} > {} (yarn.scheduler.maximum-allocation-vcores)", ask.vcores, max.vcores));
    }
    for (name, amount) in &ask.extended {
        let limit = max.extended.get(name).copied().unwrap_or(0);
        if *amount > limit {
            over.push(format!("{name} {amount} > {limit}"));
        }
    }
    (!over.is_empty()).then(|| {
        format!(
            "a TaskManager container of {ask} is larger than the largest container YARN hands out ({max}): {}; \
             lower the vertex's resources (or --tm-slots so fewer slots share one container), or ask the \
             cluster's operator to raise the scheduler's maximum allocation",
            over.join(", ")
        )
    })
}

/// The largest TaskManager (as a profile) a container of `max` holds: what
/// the SlotManager may shape workers up to.
pub fn max_worker_profile(max: &Resource) -> common::resources::ResourceProfile {
    let mut p = common::resources::ResourceProfile::new(
        u64::try_from(max.vcores).unwrap_or(0).saturating_mul(1000),
        u64::try_from(max.memory_mb).unwrap_or(0).saturating_mul(MIB),
    );
    if let Some(gpu) = max.extended.get(YARN_GPU) {
        p = p.with_extended("gpu", u64::try_from(*gpu).unwrap_or(0));
    }
    p
}

/// `scheme://[user@]host[:port]/path` as YARN's URL record; a bare absolute
/// path is a `file` URL.
pub fn parse_url(s: &str) -> Result<YarnUrl, String> {
    if s.starts_with('/') {
        return Ok(YarnUrl { scheme: "file".into(), file: s.into(), ..Default::default() });
    }
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL (scheme://host/path): {e}"))?;
    let user_info = match (url.username(), url.password()) {
        ("", None) => None,
        (u, None) => Some(u.to_owned()),
        (u, Some(p)) => Some(format!("{u}:{p}")),
    };
    // YARN's record carries the path decoded (Hadoop's `URL.fromURI` takes `URI.getPath()`).
    let file = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| format!("{s:?} has a path that is not UTF-8"))?;
    let file = if file.is_empty() { "/".to_owned() } else { file.into_owned() };
    Ok(YarnUrl {
        scheme: url.scheme().into(),
        host: url.host_str().unwrap_or_default().into(),
        port: url.port().map(i32::from),
        file,
        user_info,
    })
}

pub fn url_string(u: &YarnUrl) -> String {
    let mut s = format!("{}://", u.scheme);
    if let Some(user) = &u.user_info {
        s.push_str(user);
        s.push('@');
    }
    s.push_str(&u.host);
    if let Some(p) = u.port {
        s.push_str(&format!(":{p}"));
    }
    s.push_str(&u.file);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::resources::ResourceProfile;

    #[test]
    fn urls_become_yarn_url_records_and_back() {
        let u = parse_url("hdfs://nn.example:8020/user/u/.yarn-flink/cache/ab/yarn-flink.tar.gz").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.port), ("hdfs", "nn.example", Some(8020)));
        assert_eq!(u.file, "/user/u/.yarn-flink/cache/ab/yarn-flink.tar.gz");
        assert_eq!(url_string(&u), "hdfs://nn.example:8020/user/u/.yarn-flink/cache/ab/yarn-flink.tar.gz");
        let ns = parse_url("hdfs://MyCluster/a%20b").unwrap();
        assert_eq!((ns.host.as_str(), ns.port, ns.file.as_str()), ("MyCluster", None, "/a b"));
        let f = parse_url("/tmp/x").unwrap();
        assert_eq!((f.scheme.as_str(), f.file.as_str()), ("file", "/tmp/x"));
        assert!(parse_url("hdfs://nn:notaport/x").is_err());
        assert!(parse_url("no scheme").is_err());
    }

    #[test]
    fn worker_specs_become_rounded_up_capabilities() {
        let small = WorkerSpec::uniform(ResourceProfile::new(500, 256 * MIB), 1);
        assert_eq!(capability(&small), Resource::new(256, 1));
        let odd = WorkerSpec::uniform(ResourceProfile::new(1500, 256 * MIB + 1).with_extended("gpu", 1), 1);
        assert_eq!(capability(&odd), Resource::new(257, 2).with_extended(YARN_GPU, 1));
        let big = WorkerSpec::uniform(ResourceProfile::new(2000, 2048 * MIB), 2);
        assert_eq!(capability(&big), Resource::new(4096, 4));
    }

    #[test]
    fn oversized_asks_name_the_ask_the_limit_and_the_fix() {
        let max = Resource::new(4096, 4);
        assert_eq!(exceeds(&Resource::new(4096, 4), &max), None);
        let msg = exceeds(&Resource::new(8192, 2), &max).unwrap();
        assert!(msg.contains("<memory:8192, vCores:2>"), "{msg}");
        assert!(msg.contains("<memory:4096, vCores:4>"), "{msg}");
        assert!(msg.contains("maximum-allocation-mb"), "{msg}");
        assert!(msg.contains("lower the vertex's resources"), "{msg}");
        let gpu = exceeds(&Resource::new(1024, 1).with_extended(YARN_GPU, 1), &max).unwrap();
        assert!(gpu.contains("yarn.io/gpu 1 > 0"), "{gpu}");
        assert_eq!(max_worker_profile(&max), ResourceProfile::new(4000, 4096 * MIB));
    }
}
