//! Tests of `config.rs`: validation, flags, files and the effective configuration.

use super::*;

/// Plaintext on loopback, as `--insecure` requires without `--insecure-listen-any`.
fn insecure() -> NodeConfig {
    NodeConfig {
        insecure: true,
        api_listen: "127.0.0.1:50051".parse().unwrap(),
        raft_listen: "127.0.0.1:50052".parse().unwrap(),
        ..NodeConfig::default()
    }
}

#[test]
fn defaults_validate_in_insecure_mode_only() {
    assert!(insecure().validate().is_ok());
    assert_eq!(
        NodeConfig::default().validate().unwrap_err().field,
        "tls-ca"
    );
}

#[test]
fn relations_between_fields_are_checked() {
    let c = NodeConfig {
        election_timeout_min_ms: 140,
        ..insecure()
    };
    assert_eq!(c.validate().unwrap_err().field, "election-timeout-min-ms");
    let c = NodeConfig {
        election_timeout_max_ms: 150,
        ..insecure()
    };
    assert_eq!(c.validate().unwrap_err().field, "election-timeout-max-ms");
    let members = vec!["2=a:1/a:2".parse().unwrap(), "3=b:1/b:2".parse().unwrap()];
    let c = NodeConfig {
        initial_members: members,
        ..insecure()
    };
    assert_eq!(c.validate().unwrap_err().field, "initial-members");
    let members = vec!["1=a:1/a:2".parse().unwrap(), "1=b:1/b:2".parse().unwrap()];
    let c = NodeConfig {
        initial_members: members,
        ..insecure()
    };
    assert_eq!(c.validate().unwrap_err().field, "initial-members");
}

#[test]
fn member_spec_parses_and_prints() {
    let m: MemberSpec = "7=node7:50052/node7:50051".parse().unwrap();
    assert_eq!(
        (m.id, m.raft_addr.as_str(), m.api_addr.as_str()),
        (7, "node7:50052", "node7:50051")
    );
    assert_eq!(m.to_string(), "7=node7:50052/node7:50051");
    assert!("7=node7".parse::<MemberSpec>().is_err());
    assert!("x=a/b".parse::<MemberSpec>().is_err());
}

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    node: NodeConfig,
}

fn parse_flags(args: &[&str]) -> Result<NodeConfig, clap::Error> {
    use clap::Parser as _;
    Cli::try_parse_from(std::iter::once("sutra-node").chain(args.iter().copied())).map(|c| c.node)
}

#[test]
fn peer_dial_from_flags_repeated_or_comma_separated() {
    let c = parse_flags(&[
        "--api-listen",
        "127.0.0.1:1",
        "--raft-listen",
        "127.0.0.1:2",
        "--peer-dial",
        "2=10.0.0.2:7000",
        "--peer-dial",
        "3=proxy.local:7001,4=[::1]:7002",
    ])
    .unwrap();
    assert_eq!(
        c.peer_dial
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["2=10.0.0.2:7000", "3=proxy.local:7001", "4=[::1]:7002"]
    );
    let valid = NodeConfig {
        insecure: true,
        ..c
    }
    .validate()
    .unwrap();
    assert_eq!(
        valid.peer_dial(),
        BTreeMap::from([
            (2, "10.0.0.2:7000".to_string()),
            (3, "proxy.local:7001".to_string()),
            (4, "[::1]:7002".to_string()),
        ])
    );
    assert!(parse_flags(&["--peer-dial", "two=h:1"]).is_err());
    assert!(parse_flags(&["--peer-dial", "2"]).is_err());
    assert!(parse_flags(&[]).unwrap().peer_dial.is_empty());
}

#[test]
fn peer_dial_is_validated() {
    let with = |dials: &[&str]| NodeConfig {
        peer_dial: dials.iter().map(|d| d.parse().unwrap()).collect(),
        ..insecure()
    };
    assert!(with(&["2=h:1", "3=10.1.2.3:65535"]).validate().is_ok());
    for bad in [
        &["1=h:1"][..],      // this node
        &["0=h:1"],          // no such id
        &["2=h:1", "2=g:1"], // twice
        &["2=h"],            // no port
        &["2=h:0"],          // port 0
        &["2=h:70000"],      // port out of range
        &["2=:1"],           // no host
        &["2=http://h:1"],   // a URL, not host:port
        &["2=[::1:1"],       // unbalanced bracket
        &["2=h 1:1"],        // space
    ] {
        let e = with(bad).validate().unwrap_err();
        assert_eq!(e.field, "peer-dial", "{bad:?}: {e}");
    }
}

#[test]
fn peer_dial_in_a_file_as_table_or_list_and_in_the_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "insecure = true\ninsecure-listen-any = true\npeer-dial = { \"3\" = \"c:3\", \"2\" = \"b:2\" }\n",
    )
    .unwrap();
    let table = NodeConfig::from_file(&path).unwrap();
    std::fs::write(
        &path,
        "insecure = true\ninsecure-listen-any = true\npeer-dial = [\"2=b:2\", \"3=c:3\"]\n",
    )
    .unwrap();
    let list = NodeConfig::from_file(&path).unwrap();
    assert_eq!(table, list);
    assert_eq!(
        table.peer_dial,
        vec![
            PeerDial {
                id: 2,
                addr: "b:2".into()
            },
            PeerDial {
                id: 3,
                addr: "c:3".into()
            }
        ]
    );
    // The start-up log shows it, and reads back as the same configuration.
    let effective = table.clone().validate().unwrap().effective();
    assert!(effective.contains("[peer-dial]"), "{effective}");
    assert!(effective.contains("2 = \"b:2\""), "{effective}");
    std::fs::write(&path, &effective).unwrap();
    assert_eq!(NodeConfig::from_file(&path).unwrap(), table);
    // Without overrides it reads back too.
    let plain = insecure().validate().unwrap().effective();
    std::fs::write(&path, &plain).unwrap();
    assert_eq!(NodeConfig::from_file(&path).unwrap(), insecure());
    for (text, needle) in [
        ("peer-dial = { \"x\" = \"h:1\" }\n", "not a node id"),
        ("peer-dial = [\"2:h:1\"]\n", "expected ID=HOST:PORT"),
        ("peer-dial = 3\n", "a table"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = NodeConfig::from_file(&path).unwrap_err();
        assert!(e.reason.contains(needle), "{text}: {e}");
    }
}

#[test]
fn file_round_trip_and_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "node-id = 3\ninsecure = true\ninsecure-listen-any = true\n[[initial-members]]\nid = 3\nraft-addr = \"h:1\"\napi-addr = \"h:2\"\n").unwrap();
    let c = NodeConfig::from_file(&path).unwrap();
    assert_eq!(
        (c.node_id, c.initial_members.len(), c.heartbeat_ms),
        (3, 1, 50)
    );
    std::fs::write(&path, "node-idd = 3\n").unwrap();
    assert!(
        NodeConfig::from_file(&path)
            .unwrap_err()
            .reason
            .contains("node-idd")
    );
}

#[test]
fn insecure_listens_on_loopback_unless_told_otherwise() {
    let any: std::net::SocketAddr = "0.0.0.0:50051".parse().unwrap();
    for (field, c) in [
        (
            "api-listen",
            NodeConfig {
                api_listen: any,
                ..insecure()
            },
        ),
        (
            "raft-listen",
            NodeConfig {
                raft_listen: "10.0.0.7:50052".parse().unwrap(),
                ..insecure()
            },
        ),
    ] {
        let e = c.clone().validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(
            e.reason.contains("--insecure") && e.reason.contains("--insecure-listen-any"),
            "the reason names both flags: {e}"
        );
        let exposed = NodeConfig {
            insecure_listen_any: true,
            ..c
        };
        assert!(exposed.validate().is_ok(), "the second flag allows it");
    }
    let v6 = NodeConfig {
        api_listen: "[::1]:50051".parse().unwrap(),
        ..insecure()
    };
    assert!(v6.validate().is_ok(), "IPv6 loopback is loopback");
    // With TLS any address is fine; `insecure-listen-any` alone changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.pem");
    std::fs::write(&file, "x").unwrap();
    let tls = NodeConfig {
        tls_ca: Some(file.clone()),
        tls_cert: Some(file.clone()),
        tls_key: Some(file),
        ..NodeConfig::default()
    };
    assert!(tls.validate().is_ok());
}

#[test]
fn limits_have_production_defaults_and_are_validated() {
    let c = insecure().validate().unwrap();
    assert_eq!(c.max_client_connections, 1024);
    assert_eq!(c.max_streams_per_connection, 128);
    assert_eq!(c.request_timeout(), Duration::from_secs(30));
    assert_eq!(c.tls_handshake_timeout(), Duration::from_secs(10));
    assert_eq!(c.max_concurrent_searches, 16);
    assert_eq!(
        c.max_snapshot_bytes,
        sutra_engine::EngineConfig::default().max_file_bytes,
        "the largest snapshot is the data file's maximum"
    );
    assert!(
        c.peer_request_timeout() > c.snapshot_receive_timeout(),
        "a whole snapshot transfer fits the peer port's deadline"
    );
    for (field, bad) in [
        (
            "max-client-connections",
            NodeConfig {
                max_client_connections: 0,
                ..insecure()
            },
        ),
        (
            "max-peer-connections",
            NodeConfig {
                max_peer_connections: 0,
                ..insecure()
            },
        ),
        (
            "max-streams-per-connection",
            NodeConfig {
                max_streams_per_connection: 0,
                ..insecure()
            },
        ),
        (
            "max-concurrent-searches",
            NodeConfig {
                max_concurrent_searches: 0,
                ..insecure()
            },
        ),
        (
            "tls-handshake-timeout-ms",
            NodeConfig {
                tls_handshake_timeout_ms: 0,
                ..insecure()
            },
        ),
        (
            "http2-keepalive-timeout-ms",
            NodeConfig {
                http2_keepalive_timeout_ms: 0,
                ..insecure()
            },
        ),
        (
            "request-timeout-ms",
            NodeConfig {
                request_timeout_ms: 200,
                ..insecure()
            },
        ),
        (
            "max-snapshot-bytes",
            NodeConfig {
                max_snapshot_bytes: MAX_DATA_FILE_BYTES + 1,
                ..insecure()
            },
        ),
        (
            "snapshot-receive-timeout-ms",
            NodeConfig {
                snapshot_receive_timeout_ms: 9_999,
                ..insecure()
            },
        ),
    ] {
        let e = bad.validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn limits_from_flags_and_variables_names() {
    let c = parse_flags(&[
        "--max-client-connections",
        "8",
        "--max-streams-per-connection",
        "4",
        "--max-concurrent-searches",
        "2",
        "--request-timeout-ms",
        "5000",
        "--insecure",
        "--insecure-listen-any",
    ])
    .unwrap();
    assert_eq!(
        (
            c.max_client_connections,
            c.max_streams_per_connection,
            c.max_concurrent_searches,
            c.request_timeout_ms,
            c.insecure_listen_any
        ),
        (8, 4, 2, 5000, true)
    );
    assert!(c.validate().is_ok());
}

#[test]
fn max_sessions_per_owner_flag_and_range() {
    assert_eq!(parse_flags(&[]).unwrap().max_sessions_per_owner, None);
    let c = parse_flags(&["--max-sessions-per-owner", "40"]).unwrap();
    assert_eq!(c.max_sessions_per_owner, Some(40));
    for (per_owner, max) in [(Some(0), None), (Some(11), Some(10))] {
        let e = NodeConfig {
            max_sessions_per_owner: per_owner,
            max_sessions: max,
            ..insecure()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "max-sessions-per-owner", "{per_owner:?}");
    }
}
