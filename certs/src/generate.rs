//! A development CA and the node and client certificates it signs.
//!
//! Everything is ECDSA P-256 with SHA-256, signed through `ring`. File layout of a
//! certificate directory (see [`CertPaths`]):
//!
//! ```text
//! ca.pem      ca-key.pem (0600)                 the cluster CA (ca.pem may be a bundle)
//! node-N.pem  node-N-key.pem (0600)             node N: serverAuth + clientAuth
//! client-<name>.pem  client-<name>-key.pem (0600)   a client: clientAuth
//! ```
//!
//! [`generate_dev_set`] builds or completes a whole directory; [`issue_node_cert`] and
//! [`issue_client_cert`] add or rotate one certificate using the CA already there.
//! [`Ca`] does the same in memory for callers that manage files themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::identity::{Identity, Role, first_cert, identity_from_der, validate_client_name};

/// The CA's common name.
pub const CA_COMMON_NAME: &str = "Sutra dev CA";

/// How long the CA is valid: ten years, so a dev cluster never outlives it.
pub const CA_VALIDITY: Duration = Duration::days(3653);

/// How long node and client certificates are valid. One year keeps rotation a
/// routine operators actually practise, while a dev cluster rarely runs longer.
pub const LEAF_VALIDITY: Duration = Duration::days(365);

/// Certificates start this long before "now" so that a host whose clock is slightly
/// behind the issuing machine's does not reject a certificate as not yet valid.
const BACKDATE: Duration = Duration::hours(1);

/// Where a certificate and its private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The PEM certificate (or, for the CA, possibly a bundle of CA certificates).
    pub cert: PathBuf,
    /// The PKCS#8 PEM private key, mode 0600.
    pub key: PathBuf,
}

impl CertPaths {
    /// `ca.pem`, `ca-key.pem`.
    pub fn ca(dir: &Path) -> Self {
        Self::named(dir, "ca")
    }

    /// `node-N.pem`, `node-N-key.pem`.
    pub fn node(dir: &Path, node_id: u64) -> Self {
        Self::named(dir, &format!("node-{node_id}"))
    }

    /// `client-<name>.pem`, `client-<name>-key.pem`.
    pub fn client(dir: &Path, name: &str) -> Self {
        Self::named(dir, &format!("client-{name}"))
    }

    fn named(dir: &Path, stem: &str) -> Self {
        Self {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        }
    }
}

/// A freshly issued certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    key_pem: String,
}

impl Issued {
    /// The PKCS#8 private key, PEM. A method rather than a field so that `Debug` and
    /// accidental logging never show it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// A CA that can sign node and client certificates.
#[derive(Debug)]
pub struct Ca {
    /// Every certificate of the CA file, in file order: during a CA rotation it holds
    /// the old and the new CA, and a leaf signed by either is trusted.
    bundle_pem: String,
    bundle: Vec<CertificateDer<'static>>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Creates a new self-signed CA with a fresh key.
    pub fn generate() -> Result<Self> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(CA_COMMON_NAME);
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            bundle_pem: cert.pem(),
            bundle: vec![cert.der().clone()],
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA from `dir/ca.pem` and `dir/ca-key.pem`.
    ///
    /// `ca.pem` may hold several CA certificates (a rotation bundle); the one whose
    /// public key matches `ca-key.pem` signs. The key must be PKCS#8 PEM.
    pub fn load(dir: &Path) -> Result<Self> {
        let paths = CertPaths::ca(dir);
        let bundle_pem = read_to_string(&paths.cert)?;
        let key_pem = read_to_string(&paths.key)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::Pem {
            path: paths.key.clone(),
            reason: format!("not a PKCS#8 private key rcgen can sign with: {e}"),
        })?;
        let bundle = read_bundle(&paths.cert, bundle_pem.as_bytes())?;
        let signing_cert = bundle
            .iter()
            .find(|der| spki_key_matches(der, &key))
            .ok_or_else(|| Error::CaKeyMismatch {
                ca: paths.cert.clone(),
                key: paths.key.clone(),
            })?;
        let issuer = Issuer::from_ca_cert_der(signing_cert, key)?;
        Ok(Self {
            bundle_pem,
            bundle,
            issuer,
        })
    }

    /// The CA file's contents: one certificate, or the whole bundle it was loaded from.
    pub fn cert_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Whether `leaf_der` carries a valid signature of one of this CA's certificates.
    /// Validity dates are not checked: an expired leaf is still "ours" and is
    /// reported by the handshake, not here.
    pub fn issued(&self, leaf_der: &[u8]) -> bool {
        issued_by_any(&self.bundle, leaf_der)
    }

    /// Issues a node certificate.
    ///
    /// CN `sutra-node-N`; SANs: DNS `localhost`, `nodeN`, `sutra-nodeN` (compose
    /// service names), each of `extra_hosts` (IP literals become IP SANs), IP
    /// 127.0.0.1 and ::1, and the identity URI `sutra://node/N`. EKUs serverAuth and
    /// clientAuth, because a node is both a server and its peers' client.
    pub fn issue_node(&self, node_id: u64, extra_hosts: &[&str]) -> Result<Issued> {
        let extra = extra_hosts
            .iter()
            .map(|host| host_san(host))
            .collect::<Result<Vec<_>>>()?;
        let mut sans = vec![
            dns("localhost")?,
            dns(&format!("node{node_id}"))?,
            dns(&format!("sutra-node{node_id}"))?,
        ];
        sans.extend(extra);
        sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        sans.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        sans.push(uri_san(&Identity::Node(node_id))?);
        self.issue_leaf(
            &format!("sutra-node-{node_id}"),
            dedup(sans),
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// Issues a client certificate: CN `name`, URI SAN `sutra://client/<role>/<name>`,
    /// EKU clientAuth only, so it cannot pose as a server.
    pub fn issue_client(&self, name: &str, role: Role) -> Result<Issued> {
        validate_client_name(name)?;
        let identity = Identity::Client {
            name: name.to_owned(),
            role,
        };
        self.issue_leaf(
            name,
            vec![uri_san(&identity)?],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue_leaf(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        ekus: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Issued> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        // The authority key id lets verifiers pick the right CA when a rotation bundle
        // holds two CAs with the same subject name.
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY);
        // The serial number is left to rcgen, which derives it from the (fresh) public
        // key, so every issued certificate has its own.
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What [`generate_dev_set`] produced or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    /// The directory everything lives in.
    pub dir: PathBuf,
    /// The CA's files.
    pub ca: CertPaths,
    /// Each requested node's files.
    pub nodes: BTreeMap<u64, CertPaths>,
    /// Each requested client's files, by name.
    pub clients: BTreeMap<String, CertPaths>,
    /// Files this call wrote, in the order it wrote them. Empty when the directory
    /// already held everything.
    pub created: Vec<PathBuf>,
    /// Whether an existing CA was reused rather than generated.
    pub reused_ca: bool,
}

/// Builds, or completes, a development certificate directory.
///
/// Without `force` it is idempotent: an existing CA is reused (its key is loaded only
/// if something has to be issued), existing node and client certificates are kept
/// byte for byte, and only missing ones are created. Existing certificates are first
/// checked to be signed by the CA and to name the expected identity, and a half pair
/// (certificate without key or the reverse) is an error, so a directory that would
/// fail at the handshake is reported here instead.
///
/// With `force`, a new CA and every requested certificate are generated and replace
/// the old files. Certificates in `dir` that were not requested are left alone and no
/// longer chain to the new CA.
#[tracing::instrument(level = "info", skip_all, fields(dir = %dir.display(), nodes = node_ids.len(), clients = clients.len(), force = force))]
pub fn generate_dev_set(
    dir: &Path,
    node_ids: &[u64],
    extra_hosts: &[&str],
    clients: &[(&str, Role)],
    force: bool,
) -> Result<DevCerts> {
    // Validate everything before touching the disk, so a typo in the last client
    // name does not leave a half-written directory behind.
    for host in extra_hosts {
        host_san(host)?;
    }
    let node_ids: BTreeSet<u64> = node_ids.iter().copied().collect();
    let mut client_roles = BTreeMap::new();
    for &(name, role) in clients {
        validate_client_name(name)?;
        if client_roles
            .insert(name.to_owned(), role)
            .is_some_and(|r| r != role)
        {
            return Err(Error::InvalidInput {
                kind: "client name",
                value: name.to_owned(),
                reason: "listed twice with different roles",
            });
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;

    let ca_paths = CertPaths::ca(dir);
    let mut leaves: Vec<(CertPaths, Identity)> = Vec::new();
    for &id in &node_ids {
        leaves.push((CertPaths::node(dir, id), Identity::Node(id)));
    }
    for (name, &role) in &client_roles {
        leaves.push((
            CertPaths::client(dir, name),
            Identity::Client {
                name: name.clone(),
                role,
            },
        ));
    }

    // Decide what to keep. `present` pairs are kept; everything else is (re)issued.
    let ca_present = !force && pair_present(&ca_paths)?;
    let mut missing = Vec::new();
    let trusted = if ca_present {
        read_bundle(&ca_paths.cert, read_to_string(&ca_paths.cert)?.as_bytes())?
    } else {
        Vec::new()
    };
    for (paths, identity) in &leaves {
        if force || !pair_present(paths)? {
            missing.push((paths, identity));
            continue;
        }
        if !ca_present {
            return Err(Error::LeafWithoutCa {
                path: paths.cert.clone(),
                ca: ca_paths.cert.clone(),
            });
        }
        check_existing_leaf(paths, identity, &ca_paths.cert, &trusted)?;
    }

    let mut created = Vec::new();
    let ca = if ca_present {
        // Loading the key is deferred until something needs signing, so a complete
        // directory can be re-checked even where the CA key has been moved away.
        None
    } else {
        let ca = Ca::generate()?;
        write_pair(&ca_paths, ca.cert_pem(), &ca.key_pem(), force, &mut created)?;
        tracing::info!(path = %ca_paths.cert.display(), "generated a new CA");
        Some(ca)
    };
    if !missing.is_empty() {
        let ca = match ca {
            Some(ca) => ca,
            None => Ca::load(dir)?,
        };
        for (paths, identity) in missing {
            let issued = match identity {
                Identity::Node(id) => ca.issue_node(*id, extra_hosts)?,
                Identity::Client { name, role } => ca.issue_client(name, *role)?,
            };
            write_pair(
                paths,
                &issued.cert_pem,
                issued.key_pem(),
                force,
                &mut created,
            )?;
        }
    }

    let nodes = node_ids
        .iter()
        .map(|&id| (id, CertPaths::node(dir, id)))
        .collect();
    let clients = client_roles
        .keys()
        .map(|name| (name.clone(), CertPaths::client(dir, name)))
        .collect();
    Ok(DevCerts {
        dir: dir.to_owned(),
        ca: ca_paths,
        nodes,
        clients,
        created,
        reused_ca: ca_present,
    })
}

/// Issues one node certificate from the CA in `dir` (to add a node, or to rotate a
/// node's certificate and key with `force`). Returns where it was written.
#[tracing::instrument(level = "info", skip_all, fields(dir = %dir.display(), node_id = node_id, force = force))]
pub fn issue_node_cert(
    dir: &Path,
    node_id: u64,
    extra_hosts: &[&str],
    force: bool,
) -> Result<CertPaths> {
    issue_one(dir, CertPaths::node(dir, node_id), force, |ca| {
        ca.issue_node(node_id, extra_hosts)
    })
}

/// Issues one client certificate from the CA in `dir` (a new client, a role change,
/// or a rotation with `force`). Returns where it was written.
#[tracing::instrument(level = "info", skip_all, fields(dir = %dir.display(), name = name, role = %role, force = force))]
pub fn issue_client_cert(dir: &Path, name: &str, role: Role, force: bool) -> Result<CertPaths> {
    validate_client_name(name)?;
    issue_one(dir, CertPaths::client(dir, name), force, |ca| {
        ca.issue_client(name, role)
    })
}

/// Issues one certificate from the CA in `dir` into `paths`, refusing to overwrite
/// unless `force`.
fn issue_one(
    dir: &Path,
    paths: CertPaths,
    force: bool,
    issue: impl FnOnce(&Ca) -> Result<Issued>,
) -> Result<CertPaths> {
    refuse_overwrite(&paths, force)?;
    let issued = issue(&Ca::load(dir)?)?;
    write_pair(
        &paths,
        &issued.cert_pem,
        issued.key_pem(),
        force,
        &mut Vec::new(),
    )?;
    Ok(paths)
}

fn refuse_overwrite(paths: &CertPaths, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    for path in [&paths.cert, &paths.key] {
        if exists(path)? {
            return Err(Error::AlreadyExists { path: path.clone() });
        }
    }
    Ok(())
}

/// Whether both halves of a pair exist. One half alone is an error: a new key would
/// not match the old certificate, and a new certificate would orphan the old key.
fn pair_present(paths: &CertPaths) -> Result<bool> {
    match (exists(&paths.cert)?, exists(&paths.key)?) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (true, false) => Err(Error::IncompletePair {
            present: paths.cert.clone(),
            missing: paths.key.clone(),
        }),
        (false, true) => Err(Error::IncompletePair {
            present: paths.key.clone(),
            missing: paths.cert.clone(),
        }),
    }
}

fn check_existing_leaf(
    paths: &CertPaths,
    expected: &Identity,
    ca_path: &Path,
    trusted: &[CertificateDer<'static>],
) -> Result<()> {
    let pem = fs::read(&paths.cert).map_err(|e| Error::io(&paths.cert, e))?;
    let leaf = first_cert(&paths.cert, &pem)?;
    if !issued_by_any(trusted, &leaf) {
        return Err(Error::NotIssuedByCa {
            path: paths.cert.clone(),
            ca: ca_path.to_owned(),
        });
    }
    let found = identity_from_der(&leaf)
        .map_err(|e| Error::BadCertificate(format!("{}: {e}", paths.cert.display())))?;
    if &found != expected {
        return Err(Error::UnexpectedIdentity {
            path: paths.cert.clone(),
            expected: expected.clone(),
            found,
        });
    }
    Ok(())
}

fn issued_by_any(cas: &[CertificateDer<'_>], leaf_der: &[u8]) -> bool {
    let Ok((_, leaf)) = x509_parser::parse_x509_certificate(leaf_der) else {
        return false;
    };
    cas.iter().any(|ca_der| {
        x509_parser::parse_x509_certificate(ca_der)
            .is_ok_and(|(_, ca)| leaf.verify_signature(Some(ca.public_key())).is_ok())
    })
}

/// Whether the certificate's subject public key is `key`'s public key.
fn spki_key_matches(cert_der: &[u8], key: &KeyPair) -> bool {
    x509_parser::parse_x509_certificate(cert_der).is_ok_and(|(_, cert)| {
        cert.is_ca() && *cert.public_key().subject_public_key.data == *key.public_key_raw()
    })
}

fn read_bundle(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    crate::tls::parse_certs(path, pem)
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Sutra");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn dns(name: &str) -> Result<SanType> {
    Ok(SanType::DnsName(name.try_into()?))
}

fn uri_san(identity: &Identity) -> Result<SanType> {
    Ok(SanType::URI(identity.uri().try_into()?))
}

/// An extra host: an IP literal becomes an IP SAN, anything else must be a DNS name.
fn host_san(host: &str) -> Result<SanType> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |reason| Error::InvalidInput {
        kind: "host name",
        value: host.to_owned(),
        reason,
    };
    if host.is_empty() || host.len() > 253 {
        return Err(invalid("must be 1 to 253 characters long"));
    }
    for label in host.split('.') {
        // Underscores are allowed because compose service names may contain them and
        // rustls accepts them in DNS names.
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !valid_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(invalid(
                "each dot-separated label must be 1-63 characters of A-Z, a-z, 0-9, '-', '_' and not start or end with '-'",
            ));
        }
    }
    dns(host)
}

fn dedup(sans: Vec<SanType>) -> Vec<SanType> {
    let mut out: Vec<SanType> = Vec::with_capacity(sans.len());
    for san in sans {
        if !out.contains(&san) {
            out.push(san);
        }
    }
    out
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists().map_err(|e| Error::io(path, e))
}

fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Writes the key, then the certificate, so that a certificate on disk always has its
/// key beside it.
fn write_pair(
    paths: &CertPaths,
    cert_pem: &str,
    key_pem: &str,
    overwrite: bool,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    write_file(&paths.key, key_pem.as_bytes(), true, overwrite)?;
    created.push(paths.key.clone());
    write_file(&paths.cert, cert_pem.as_bytes(), false, overwrite)?;
    created.push(paths.cert.clone());
    tracing::info!(cert = %paths.cert.display(), key = %paths.key.display(), "wrote certificate and key");
    Ok(())
}

/// Writes a file readable by its owner only (`private`) or by everyone.
///
/// Without `overwrite` the file is created exclusively, so a file that appeared since
/// the caller looked is never clobbered. With `overwrite` it is written beside the
/// target and renamed over it, so readers never see a truncated certificate and a
/// replaced key is never briefly world-readable.
fn write_file(path: &Path, contents: &[u8], private: bool, overwrite: bool) -> Result<()> {
    let target = if overwrite {
        let mut name = path
            .file_name()
            .expect("certificate paths always end in a file name")
            .to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    } else {
        path.to_owned()
    };
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&target).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists {
                path: target.clone(),
            }
        } else {
            Error::io(&target, e)
        }
    })?;
    // A leftover temp file from a crash may have other permissions; fix them before
    // the key lands in it.
    #[cfg(unix)]
    if overwrite {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if private { 0o600 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&target, e))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&target, e))?;
    if overwrite {
        fs::rename(&target, path).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}
