//! The dev-set generator against a real directory: what it writes, that it keeps what
//! is there, that `force` replaces it, and that it refuses directories that would fail
//! at the handshake.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sutra_certs::generate::{CA_COMMON_NAME, LEAF_VALIDITY};
use sutra_certs::{
    Ca, CertPaths, Error, Identity, Role, generate_dev_set, identity_from_pem_file,
    issue_client_cert, issue_node_cert,
};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

const CLIENTS: &[(&str, Role)] = &[("reader", Role::Read), ("ops", Role::Admin)];

/// Every regular file in `dir` with its bytes, to prove what did or did not change.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("dir is readable")
        .map(|entry| {
            let path = entry.expect("entry is readable").path();
            let bytes = fs::read(&path).expect("file is readable");
            (path, bytes)
        })
        .collect()
}

fn der_of(path: &Path) -> Vec<u8> {
    let pem = fs::read(path).expect("cert is readable");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("file is PEM");
    pem.contents
}

fn with_cert<R>(path: &Path, f: impl FnOnce(&X509Certificate<'_>) -> R) -> R {
    let der = der_of(path);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("file is X.509");
    f(&cert)
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("certificate has a CN")
        .to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path)
        .expect("file exists")
        .permissions()
        .mode()
        & 0o777
}

/// A fresh dev set has the documented files, names, SANs, EKUs and key permissions,
/// and each certificate carries the identity the server will later read from it.
#[test]
fn t10_fresh_dev_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("certs");

    tracing::info!("--- generate three nodes and two clients");
    let set = generate_dev_set(
        &dir,
        &[1, 2, 3],
        &["sutra.example", "203.0.113.7"],
        CLIENTS,
        false,
    )
    .expect("generation succeeds");
    assert!(!set.reused_ca);
    assert_eq!(set.created.len(), 2 + 3 * 2 + 2 * 2, "{:?}", set.created);
    let mut names: Vec<String> = snapshot(&dir)
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ca-key.pem",
            "ca.pem",
            "client-ops-key.pem",
            "client-ops.pem",
            "client-reader-key.pem",
            "client-reader.pem",
            "node-1-key.pem",
            "node-1.pem",
            "node-2-key.pem",
            "node-2.pem",
            "node-3-key.pem",
            "node-3.pem",
        ]
    );
    assert_eq!(set.nodes[&2], CertPaths::node(&dir, 2));
    assert_eq!(set.clients["ops"], CertPaths::client(&dir, "ops"));

    tracing::info!("--- keys are private, certificates are not");
    #[cfg(unix)]
    {
        assert_eq!(mode(&set.ca.key), 0o600);
        assert_eq!(mode(&set.nodes[&1].key), 0o600);
        assert_eq!(mode(&set.clients["reader"].key), 0o600);
        assert_eq!(mode(&set.ca.cert) & 0o600, 0o600);
    }

    tracing::info!("--- identities");
    assert_eq!(
        identity_from_pem_file(&set.nodes[&2].cert).unwrap(),
        Identity::Node(2)
    );
    assert_eq!(
        identity_from_pem_file(&set.clients["reader"].cert).unwrap(),
        Identity::Client {
            name: "reader".into(),
            role: Role::Read
        }
    );
    assert_eq!(
        identity_from_pem_file(&set.clients["ops"].cert).unwrap(),
        Identity::Client {
            name: "ops".into(),
            role: Role::Admin
        }
    );
    assert!(
        matches!(identity_from_pem_file(&set.ca.cert), Err(Error::NoIdentity)),
        "the CA is nobody"
    );

    tracing::info!("--- the CA");
    with_cert(&set.ca.cert, |ca| {
        assert!(ca.is_ca());
        assert_eq!(common_name(ca), CA_COMMON_NAME);
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 24 * 3600);
        assert_eq!(years, 10);
    });

    tracing::info!("--- a node certificate");
    with_cert(&set.nodes[&2].cert, |node| {
        assert!(!node.is_ca());
        assert_eq!(common_name(node), "sutra-node-2");
        let san = node.subject_alternative_name().unwrap().expect("has SANs");
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        let mut uris = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => ips.push(match b.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                }),
                GeneralName::URI(u) => uris.push(u.to_string()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(dns, ["localhost", "node2", "sutra-node2", "sutra.example"]);
        let expected_ips: Vec<IpAddr> = ["203.0.113.7", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ips, expected_ips);
        assert_eq!(uris, ["sutra://node/2"]);
        let eku = node.extended_key_usage().unwrap().expect("has EKU").value;
        assert!(eku.server_auth && eku.client_auth);
        let days = (node.validity().not_after.timestamp() - node.validity().not_before.timestamp())
            / (24 * 3600);
        assert_eq!(
            days,
            LEAF_VALIDITY.whole_days(),
            "one year plus the one-hour backdate"
        );
    });

    tracing::info!("--- a client certificate");
    with_cert(&set.clients["reader"].cert, |client| {
        assert_eq!(common_name(client), "reader");
        let eku = client.extended_key_usage().unwrap().expect("has EKU").value;
        assert!(
            eku.client_auth && !eku.server_auth,
            "a client cannot pose as a server"
        );
    });
}

/// Re-running keeps every existing file byte for byte and adds only what is missing;
/// single certificates can be added or rotated from the same CA; `force` replaces
/// the CA and everything requested.
#[test]
fn t20_rerun_issue_and_force() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let first = generate_dev_set(dir, &[1, 2, 3], &[], CLIENTS, false).expect("first run");
    let before = snapshot(dir);

    tracing::info!("--- same request again: nothing written");
    let again = generate_dev_set(dir, &[1, 2, 3], &[], CLIENTS, false).expect("second run");
    assert!(again.reused_ca);
    assert!(again.created.is_empty(), "{:?}", again.created);
    assert_eq!(snapshot(dir), before);

    tracing::info!("--- a fourth node and a new client: only their files appear");
    let grown = generate_dev_set(
        dir,
        &[1, 2, 3, 4],
        &[],
        &[("reader", Role::Read), ("w", Role::Write)],
        false,
    )
    .expect("third run");
    assert!(grown.reused_ca);
    let mut created = grown.created.clone();
    created.sort();
    let mut expected = vec![
        grown.nodes[&4].cert.clone(),
        grown.nodes[&4].key.clone(),
        grown.clients["w"].cert.clone(),
        grown.clients["w"].key.clone(),
    ];
    expected.sort();
    assert_eq!(created, expected);
    let after = snapshot(dir);
    for (path, bytes) in &before {
        assert_eq!(&after[path], bytes, "{} changed", path.display());
    }
    let ca = Ca::load(dir).expect("CA loads");
    assert!(
        ca.issued(&der_of(&grown.nodes[&4].cert)),
        "node 4 is signed by the reused CA"
    );

    tracing::info!("--- issue_node_cert refuses to overwrite, then rotates with force");
    let node1 = CertPaths::node(dir, 1);
    assert!(matches!(
        issue_node_cert(dir, 1, &[], false),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(fs::read(&node1.cert).unwrap(), before[&node1.cert]);
    issue_node_cert(dir, 1, &["node1.internal"], true).expect("rotation");
    assert_ne!(fs::read(&node1.cert).unwrap(), before[&node1.cert]);
    assert_ne!(
        fs::read(&node1.key).unwrap(),
        before[&node1.key],
        "rotation replaces the key too"
    );
    assert_eq!(
        identity_from_pem_file(&node1.cert).unwrap(),
        Identity::Node(1)
    );
    assert!(ca.issued(&der_of(&node1.cert)));
    #[cfg(unix)]
    assert_eq!(mode(&node1.key), 0o600);

    tracing::info!("--- issue_client_cert adds a client");
    let carol = issue_client_cert(dir, "carol", Role::Write, false).expect("new client");
    assert_eq!(
        identity_from_pem_file(&carol.cert).unwrap(),
        Identity::Client {
            name: "carol".into(),
            role: Role::Write
        }
    );
    assert!(matches!(
        issue_client_cert(dir, "../evil", Role::Admin, false),
        Err(Error::InvalidInput { .. })
    ));

    tracing::info!("--- force: a new CA, new certificates");
    let forced = generate_dev_set(dir, &[1, 2, 3], &[], CLIENTS, true).expect("forced run");
    assert!(!forced.reused_ca);
    assert_eq!(forced.created.len(), 2 + 3 * 2 + 2 * 2);
    assert_ne!(fs::read(&first.ca.cert).unwrap(), before[&first.ca.cert]);
    assert_ne!(
        fs::read(&first.nodes[&2].cert).unwrap(),
        before[&first.nodes[&2].cert]
    );
    let new_ca = Ca::load(dir).expect("new CA loads");
    assert!(new_ca.issued(&der_of(&forced.nodes[&2].cert)));
    assert!(
        !new_ca.issued(&der_of(&grown.nodes[&4].cert)),
        "node 4 was not requested, so it still has the old CA"
    );
    assert!(!ca.issued(&der_of(&forced.nodes[&2].cert)));
}

/// A directory that would fail at the handshake (half pairs, leaves from another CA,
/// a certificate under the wrong name) is reported instead of silently completed, and
/// bad input writes nothing.
#[test]
fn t30_refuses_inconsistent_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a");
    let other = tmp.path().join("b");
    generate_dev_set(&dir, &[1, 2, 3], &[], &[], false).expect("set a");
    generate_dev_set(&other, &[1], &[], &[], false).expect("set b");

    tracing::info!("--- a missing key");
    fs::remove_file(dir.join("node-3-key.pem")).unwrap();
    assert!(matches!(
        generate_dev_set(&dir, &[1, 2, 3], &[], &[], false),
        Err(Error::IncompletePair { .. })
    ));
    assert!(
        !dir.join("node-3-key.pem").exists(),
        "nothing was completed"
    );

    tracing::info!("--- a leaf from another CA");
    fs::remove_file(dir.join("node-3.pem")).unwrap();
    fs::copy(other.join("node-1.pem"), dir.join("node-1.pem")).unwrap();
    fs::copy(other.join("node-1-key.pem"), dir.join("node-1-key.pem")).unwrap();
    assert!(matches!(
        generate_dev_set(&dir, &[1, 2], &[], &[], false),
        Err(Error::NotIssuedByCa { .. })
    ));

    tracing::info!("--- a certificate under the wrong name");
    fs::copy(dir.join("node-2.pem"), dir.join("node-5.pem")).unwrap();
    fs::copy(dir.join("node-2-key.pem"), dir.join("node-5-key.pem")).unwrap();
    match generate_dev_set(&dir, &[2, 5], &[], &[], false) {
        Err(Error::UnexpectedIdentity {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (Identity::Node(5), Identity::Node(2)));
        }
        other => panic!("expected UnexpectedIdentity, got {other:?}"),
    }

    tracing::info!("--- leaves without a CA");
    let orphan = tmp.path().join("c");
    fs::create_dir(&orphan).unwrap();
    fs::copy(other.join("node-1.pem"), orphan.join("node-1.pem")).unwrap();
    fs::copy(other.join("node-1-key.pem"), orphan.join("node-1-key.pem")).unwrap();
    assert!(matches!(
        generate_dev_set(&orphan, &[1], &[], &[], false),
        Err(Error::LeafWithoutCa { .. })
    ));
    assert!(
        !orphan.join("ca.pem").exists(),
        "no CA was created next to a foreign leaf"
    );

    tracing::info!("--- bad input writes nothing");
    let empty = tmp.path().join("d");
    assert!(matches!(
        generate_dev_set(&empty, &[1], &["bad host"], &[], false),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        generate_dev_set(
            &empty,
            &[1],
            &[],
            &[("x", Role::Read), ("x", Role::Admin)],
            false
        ),
        Err(Error::InvalidInput { .. })
    ));
    assert!(!empty.exists());
}

/// During a CA rotation ca.pem holds the new and the old CA: the CA loads with the
/// certificate that matches ca-key.pem, signs with it, and still recognises leaves
/// of the old CA.
#[test]
fn t40_ca_bundle_for_rotation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = tmp.path().join("old");
    let new = tmp.path().join("new");
    generate_dev_set(&old, &[1], &[], &[], false).expect("old set");
    generate_dev_set(&new, &[], &[], &[], false).expect("new CA");

    tracing::info!("--- ca.pem = old CA + new CA, ca-key.pem = new key");
    let bundle = format!(
        "{}{}",
        fs::read_to_string(old.join("ca.pem")).unwrap(),
        fs::read_to_string(new.join("ca.pem")).unwrap()
    );
    fs::write(new.join("ca.pem"), &bundle).unwrap();
    let ca = Ca::load(&new).expect("bundle loads");
    assert_eq!(ca.cert_pem(), bundle);

    tracing::info!("--- new leaves come from the new CA, old ones are still trusted");
    let issued = issue_node_cert(&new, 2, &[], false).expect("issue from the bundle dir");
    let old_ca = Ca::load(&old).expect("old CA");
    assert!(
        !old_ca.issued(&der_of(&issued.cert)),
        "signed by the new key, not the old"
    );
    assert!(ca.issued(&der_of(&issued.cert)));
    assert!(ca.issued(&der_of(&old.join("node-1.pem"))));

    tracing::info!("--- a key that belongs to no CA in the bundle");
    fs::copy(old.join("node-1-key.pem"), new.join("ca-key.pem")).unwrap();
    assert!(matches!(Ca::load(&new), Err(Error::CaKeyMismatch { .. })));
}
