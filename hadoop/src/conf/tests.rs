use super::*;
use proptest::prelude::*;

fn site(props: &[(&str, &str)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (k, v) in props {
        s.push_str(&format!("  <property>\n    <name>{k}</name>\n    <value>{v}</value>\n  </property>\n"));
    }
    s.push_str("</configuration>\n");
    s
}

/// A conf dir holding the given files.
fn dir_with(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn conf_of(files: &[(&str, String)]) -> HadoopConf {
    let dir = dir_with(files);
    HadoopConf::load_dir(dir.path()).unwrap()
}

fn addrs(v: Vec<Endpoint>) -> Vec<String> {
    v.into_iter().map(|e| e.to_string()).collect()
}

#[test]
fn defaults_apply_without_any_file() {
    let conf = conf_of(&[]);
    assert_eq!(conf.missing_files.len(), 3);
    assert_eq!(addrs(conf.rm_addresses().unwrap()), ["0.0.0.0:8032"]);
    assert_eq!(addrs(conf.scheduler_addresses().unwrap()), ["0.0.0.0:8030"]);
    assert_eq!(addrs(conf.rm_webapp_urls().unwrap()), ["http://0.0.0.0:8088"]);
    assert_eq!(conf.security().unwrap(), SecurityMode::Simple);
    assert_eq!(conf.rpc_protection().unwrap(), [RpcProtection::Authentication]);
    assert_eq!(conf.max_allocation().unwrap(), (8192, 4));
    assert_eq!(conf.min_allocation_mb().unwrap(), 1024);
    assert!(conf.namenode_addresses().unwrap().is_empty(), "file:/// has no NameNode");
}

#[test]
fn hostname_feeds_every_rm_address_and_https_policy_picks_8090() {
    let conf = conf_of(&[(
        "yarn-site.xml",
        site(&[("yarn.resourcemanager.hostname", "rm.example.com"), ("yarn.http.policy", "HTTPS_ONLY")]),
    )]);
    assert_eq!(addrs(conf.rm_addresses().unwrap()), ["rm.example.com:8032"]);
    assert_eq!(addrs(conf.scheduler_addresses().unwrap()), ["rm.example.com:8030"]);
    assert_eq!(addrs(conf.rm_webapp_urls().unwrap()), ["https://rm.example.com:8090"]);
}

#[test]
fn later_files_override_unless_final() {
    let core = "<configuration>\n<property><name>a</name><value>core</value><final>true</final></property>\n\
                <property><name>b</name><value>core</value></property>\n</configuration>";
    let conf = conf_of(&[("core-site.xml", core.into()), ("yarn-site.xml", site(&[("a", "yarn"), ("b", "yarn")]))]);
    assert_eq!(conf.get("a").unwrap().as_deref(), Some("core"));
    assert_eq!(conf.get("b").unwrap().as_deref(), Some("yarn"));
    assert_eq!(conf.ignored_overrides.len(), 1);
    assert!(conf.source_of("b").unwrap().ends_with("yarn-site.xml"));
}

#[test]
fn substitution_from_properties_and_env_with_a_depth_limit() {
    let conf = conf_of(&[(
        "core-site.xml",
        site(&[
            ("base", "/data"),
            ("dir", "${base}/x"),
            ("deeper", "${dir}/y-${env.TEAM}"),
            ("undefined", "${nope}/z"),
            ("loop", "${loop}!"),
            ("escaped", "a &lt; b &amp;&#33;"),
        ]),
    )])
    .with_env([("TEAM".to_owned(), "flink".to_owned())].into());
    assert_eq!(conf.get("deeper").unwrap().as_deref(), Some("/data/x/y-flink"));
    assert_eq!(conf.get("undefined").unwrap().as_deref(), Some("${nope}/z"));
    assert_eq!(conf.get("escaped").unwrap().as_deref(), Some("a < b &!"));
    let err = conf.get("loop").unwrap_err().to_string();
    assert!(err.contains("loop") && err.contains("deeper than 20"), "{err}");
}

#[test]
fn rm_ha_uses_per_id_addresses_or_per_id_hostnames() {
    let conf = conf_of(&[(
        "yarn-site.xml",
        site(&[
            ("yarn.resourcemanager.ha.enabled", "true"),
            ("yarn.resourcemanager.ha.rm-ids", "rm1, rm2"),
            ("yarn.resourcemanager.address.rm1", "a.example:9032"),
            ("yarn.resourcemanager.hostname.rm2", "b.example"),
            ("yarn.resourcemanager.hostname.rm1", "a.example"),
        ]),
    )]);
    assert_eq!(addrs(conf.rm_addresses().unwrap()), ["rm1=a.example:9032", "rm2=b.example:8032"]);
    assert_eq!(addrs(conf.scheduler_addresses().unwrap()), ["rm1=a.example:8030", "rm2=b.example:8030"]);
    assert_eq!(addrs(conf.rm_webapp_urls().unwrap()), ["rm1=http://a.example:8088", "rm2=http://b.example:8088"]);
}

#[test]
fn rm_ha_without_ids_or_hosts_says_what_to_set() {
    let conf = conf_of(&[("yarn-site.xml", site(&[("yarn.resourcemanager.ha.enabled", "true")]))]);
    let err = conf.rm_addresses().unwrap_err().to_string();
    assert!(err.contains("yarn.resourcemanager.ha.rm-ids") && err.contains("yarn-site.xml"), "{err}");
    let conf = conf_of(&[(
        "yarn-site.xml",
        site(&[("yarn.resourcemanager.ha.enabled", "true"), ("yarn.resourcemanager.ha.rm-ids", "rm1")]),
    )]);
    let err = conf.rm_addresses().unwrap_err().to_string();
    assert!(err.contains("yarn.resourcemanager.hostname.rm1"), "{err}");
}

#[test]
fn namenode_addresses_from_default_fs_and_ha_nameservice() {
    let conf = conf_of(&[("core-site.xml", site(&[("fs.defaultFS", "hdfs://nn.example")]))]);
    assert_eq!(addrs(conf.namenode_addresses().unwrap()), ["nn.example:8020"]);
    let conf = conf_of(&[("core-site.xml", site(&[("fs.defaultFS", "hdfs://nn.example:9000/")]))]);
    assert_eq!(addrs(conf.namenode_addresses().unwrap()), ["nn.example:9000"]);
    let conf = conf_of(&[
        ("core-site.xml", site(&[("fs.defaultFS", "hdfs://prod")])),
        (
            "hdfs-site.xml",
            site(&[
                ("dfs.nameservices", "prod,other"),
                ("dfs.ha.namenodes.prod", "nn1,nn2"),
                ("dfs.namenode.rpc-address.prod.nn1", "h1:8020"),
                ("dfs.namenode.rpc-address.prod.nn2", "h2:8020"),
            ]),
        ),
    ]);
    assert_eq!(addrs(conf.namenode_addresses().unwrap()), ["nn1=h1:8020", "nn2=h2:8020"]);
}

#[test]
fn principals_resolve_host() {
    let conf = conf_of(&[(
        "yarn-site.xml",
        site(&[("yarn.resourcemanager.principal", "rm/_HOST@EXAMPLE.COM"), ("yarn.nodemanager.principal", "nm@X")]),
    )]);
    assert_eq!(conf.rm_principal("RM1.Example.com").unwrap().as_deref(), Some("rm/rm1.example.com@EXAMPLE.COM"));
    assert_eq!(conf.nm_principal("h").unwrap().as_deref(), Some("nm@X"));
    assert_eq!(conf.namenode_principal("h").unwrap(), None);
    assert_eq!(resolve_host_principal("nn/_HOST", "h"), "nn/h");
}

#[test]
fn bad_values_name_the_key_and_file() {
    let conf = conf_of(&[(
        "yarn-site.xml",
        site(&[("yarn.scheduler.maximum-allocation-mb", "lots"), ("yarn.resourcemanager.address", "nohostport")]),
    )]);
    let err = conf.max_allocation().unwrap_err().to_string();
    assert!(err.contains("yarn.scheduler.maximum-allocation-mb") && err.contains("yarn-site.xml"), "{err}");
    let err = conf.rm_addresses().unwrap_err().to_string();
    assert!(err.contains("host:port"), "{err}");
    let conf = conf_of(&[("core-site.xml", site(&[("hadoop.security.authentication", "kerb")]))]);
    assert!(conf.security().unwrap_err().to_string().contains("simple or kerberos"));
}

#[test]
fn malformed_files_give_file_and_line() {
    let bad = "<?xml version=\"1.0\"?>\n<configuration>\n  <property>\n    <name>a</name>\n    <value>1</vlue>\n  </property>\n</configuration>\n";
    let dir = dir_with(&[("yarn-site.xml", bad.into())]);
    let err = HadoopConf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("yarn-site.xml line 5"), "{err}");

    let dir = dir_with(&[("core-site.xml", "<?xml version=\"1.0\"?>\n\n<beans/>\n".into())]);
    let err = HadoopConf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("core-site.xml line 3") && err.contains("<beans>"), "{err}");

    let dir = dir_with(&[("core-site.xml", "<configuration>\n<property><value>1</value></property>\n".into())]);
    let err = HadoopConf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("without a <name>"), "{err}");

    let dir = dir_with(&[("hdfs-site.xml", "<configuration>\n<property>".into())]);
    let err = HadoopConf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("hdfs-site.xml line 2"), "{err}");

    let err = HadoopConf::load_dir(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn set_overrides_files_and_feeds_substitution() {
    let mut conf = conf_of(&[("yarn-site.xml", site(&[("yarn.resourcemanager.hostname", "a")]))]);
    conf.set("yarn.resourcemanager.hostname", "b");
    assert_eq!(addrs(conf.rm_addresses().unwrap()), ["b:8032"]);
}

proptest! {
    #[test]
    fn the_xml_loader_never_panics(text in "[<>/a-z=\"'&;#${}. \n]{0,200}") {
        let mut conf = HadoopConf::new();
        let _ = conf.add_xml_str(&text, "fuzz.xml");
        let mut framed = HadoopConf::new();
        let _ = framed.add_xml_str(&format!("<configuration><property><name>k</name><value>{text}</value></property></configuration>"), "fuzz.xml");
        let _ = framed.get("k");
    }
}

#[test]
fn the_web_proxy_hosts_are_the_standalone_proxy_or_every_rm_web_app() {
    let standalone = conf_of(&[(
        "yarn-site.xml",
        site(&[("yarn.web-proxy.address", "proxy.example:9046"), ("yarn.resourcemanager.hostname", "rm.example")]),
    )]);
    assert_eq!(standalone.web_proxy_hosts().unwrap(), ["proxy.example"]);
    let ha = conf_of(&[(
        "yarn-site.xml",
        site(&[
            ("yarn.resourcemanager.ha.enabled", "true"),
            ("yarn.resourcemanager.ha.rm-ids", "rm1,rm2"),
            ("yarn.resourcemanager.hostname.rm1", "a.example"),
            ("yarn.resourcemanager.webapp.address.rm2", "b.example:18088"),
        ]),
    )]);
    assert_eq!(ha.web_proxy_hosts().unwrap(), ["a.example", "b.example"]);
    // The single-node default: the caller resolves the wildcard to its own host.
    assert_eq!(conf_of(&[]).web_proxy_hosts().unwrap(), ["0.0.0.0"]);
    let bad = conf_of(&[("yarn-site.xml", site(&[("yarn.web-proxy.address", "no-port")]))]);
    let err = bad.web_proxy_hosts().unwrap_err().to_string();
    assert!(err.contains("yarn.web-proxy.address") && err.contains("host:port"), "{err}");
}
