//! An in-process, read-only SSH agent for `--ssh ID=KEYFILE`: holds OpenSSH private keys and answers
//! the agent protocol (list identities, sign) on a Unix socket in a private directory until dropped.
//!
//! Lifecycle: [`SshKey::load`] each key file, [`SshAgent::start`] with them, hand [`SshAgent::socket`]
//! to the build (`BuildRequest.ssh`), drop the agent when the build ends: that stops the accept thread,
//! closes every connection, joins their threads and removes the directory. Everything but
//! SSH_AGENTC_REQUEST_IDENTITIES and SSH_AGENTC_SIGN_REQUEST gets SSH_AGENT_FAILURE (no add, remove,
//! lock or extensions), as a read-only agent should.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use ssh_key::private::KeypairData;
use ssh_key::{EcdsaCurve, HashAlg, PrivateKey};

// Message numbers and flags of draft-miller-ssh-agent.
const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
const SSH_AGENT_RSA_SHA2_256: u32 = 2;
const SSH_AGENT_RSA_SHA2_512: u32 = 4;
/// OpenSSH's ssh-agent limit; a longer message closes the connection.
const MAX_MESSAGE: usize = 256 * 1024;
/// Key files are small; anything larger is not one (and is not read whole).
const MAX_KEY_FILE: u64 = 1 << 20;

/// Why a key could not be loaded or the agent could not start. Messages name the path; none carries
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum SshAgentError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the key is encrypted", path.display())]
    Encrypted { path: PathBuf },
    #[error("{}: not a usable SSH private key ({reason})", path.display())]
    NotAKey { path: PathBuf, reason: String },
    #[error("{}: {algorithm} keys are not supported (ed25519, ecdsa-sha2-nistp256/384 and rsa are)", path.display())]
    Unsupported { path: PathBuf, algorithm: String },
    #[error("SSH agent socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One private key the agent serves, with its public key blob (what clients name it by).
pub struct SshKey {
    key: PrivateKey,
    /// RSA keys sign through the `rsa` crate, which lets the client pick the hash.
    rsa: Option<rsa::RsaPrivateKey>,
    blob: Vec<u8>,
    comment: String,
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        f.debug_struct("SshKey")
            .field("fingerprint", &self.fingerprint())
            .field("comment", &self.comment)
            .finish()
    }
}

impl SshKey {
    /// Reads an unencrypted private key file: OpenSSH's format (`-----BEGIN OPENSSH PRIVATE KEY-----`)
    /// or one of the PEM formats (PKCS#1, SEC1, PKCS#8) that `ssh-add` also reads.
    pub fn load(path: &Path) -> Result<SshKey, SshAgentError> {
        let read_err = |source| SshAgentError::Read {
            path: path.to_path_buf(),
            source,
        };
        let not_a_key = |reason: &str| SshAgentError::NotAKey {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        // Only regular files: opening a FIFO would wait for a writer.
        let md = std::fs::metadata(path).map_err(read_err)?;
        if !md.is_file() {
            return Err(not_a_key("not a regular file"));
        }
        // The key's text is wiped when dropped; sized up front so that reading it never
        // reallocates (which would leave a copy behind in freed memory).
        let mut text =
            zeroize::Zeroizing::new(Vec::with_capacity(md.len().min(MAX_KEY_FILE) as usize + 1));
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_KEY_FILE + 1)
            .read_to_end(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_KEY_FILE {
            return Err(not_a_key("larger than 1 MiB"));
        }
        let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        let key = if has(b"-----BEGIN OPENSSH PRIVATE KEY-----") {
            PrivateKey::from_openssh(&text).map_err(|e| not_a_key(&e.to_string()))?
        } else {
            if has(b"ENCRYPTED") && has(b"PRIVATE KEY-----") {
                return Err(SshAgentError::Encrypted {
                    path: path.to_path_buf(),
                });
            }
            // The PEM formats `ssh-keygen -m PEM|PKCS8` writes.
            let text = String::from_utf8_lossy(&text);
            crate::ssh_pem::parse(&text).map_err(|e| not_a_key(&e))?
        };
        if key.is_encrypted() {
            return Err(SshAgentError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        let comment = if key.comment().is_empty() {
            path.display().to_string()
        } else {
            key.comment().to_string()
        };
        SshKey::new(key, comment, path)
    }

    /// The key as the agent serves it (`path` only names it in errors).
    fn new(key: PrivateKey, comment: String, path: &Path) -> Result<SshKey, SshAgentError> {
        let unsupported = || SshAgentError::Unsupported {
            path: path.to_path_buf(),
            algorithm: key.algorithm().as_str().to_string(),
        };
        let invalid = |reason: &str| SshAgentError::NotAKey {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let rsa = match key.key_data() {
            KeypairData::Ed25519(_) => None,
            KeypairData::Ecdsa(k)
                if matches!(k.curve(), EcdsaCurve::NistP256 | EcdsaCurve::NistP384) =>
            {
                None
            }
            KeypairData::Rsa(k) => {
                Some(rsa_private(k).ok_or_else(|| invalid("inconsistent RSA key"))?)
            }
            _ => return Err(unsupported()),
        };
        let blob = key
            .public_key()
            .to_bytes()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(SshKey {
            key,
            rsa,
            blob,
            comment,
        })
    }

    /// `SHA256:<base64>`, as `ssh-add -l` and `ssh-keygen -l` print it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The SSH signature (algorithm name, blob) of `data`. For RSA, `flags` picks the hash as
    /// OpenSSH's agent does: SHA-256 first, then SHA-512, else SHA-1 (`ssh-rsa`).
    fn sign(&self, data: &[u8], flags: u32) -> Option<(String, Vec<u8>)> {
        let Some(rsa) = &self.rsa else {
            let sig: ssh_key::Signature = self.key.try_sign(data).ok()?;
            return Some((
                sig.algorithm().as_str().to_string(),
                sig.as_bytes().to_vec(),
            ));
        };
        use rsa::pkcs1v15::SigningKey;
        // Randomized signing blinds the private-key operation.
        let rng = &mut rand_core::OsRng;
        let key = rsa.clone();
        Some(if flags & SSH_AGENT_RSA_SHA2_256 != 0 {
            (
                "rsa-sha2-256".into(),
                SigningKey::<ssh_key::sha2::Sha256>::new(key)
                    .try_sign_with_rng(rng, data)
                    .ok()?
                    .to_vec(),
            )
        } else if flags & SSH_AGENT_RSA_SHA2_512 != 0 {
            (
                "rsa-sha2-512".into(),
                SigningKey::<ssh_key::sha2::Sha512>::new(key)
                    .try_sign_with_rng(rng, data)
                    .ok()?
                    .to_vec(),
            )
        } else {
            (
                "ssh-rsa".into(),
                SigningKey::<sha1::Sha1>::new(key)
                    .try_sign_with_rng(rng, data)
                    .ok()?
                    .to_vec(),
            )
        })
    }
}

/// The `rsa` crate's key, validated. Built from the components here because ssh-key 0.6.7's own
/// conversion passes `p` twice (and so fails `rsa`'s validation).
fn rsa_private(k: &ssh_key::private::RsaKeypair) -> Option<rsa::RsaPrivateKey> {
    let int = |m: &ssh_key::Mpint| m.as_positive_bytes().map(rsa::BigUint::from_bytes_be);
    let primes = vec![int(&k.private.p)?, int(&k.private.q)?];
    rsa::RsaPrivateKey::from_components(
        int(&k.public.n)?,
        int(&k.public.e)?,
        int(&k.private.d)?,
        primes,
    )
    .ok()
}

/// A running agent: a socket in a private (0700) temporary directory and the threads serving it.
/// Dropping it stops them all and removes the directory.
pub struct SshAgent {
    dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    shared: Arc<Shared>,
    /// Shared with the accept thread, so its descriptor stays valid for the shutdown that wakes it.
    listener: Arc<UnixListener>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    keys: Vec<SshKey>,
    stop: AtomicBool,
    /// Open connections: a handle to shut each down, and the thread serving it.
    conns: Mutex<Vec<(UnixStream, JoinHandle<()>)>>,
}

impl SshAgent {
    /// Binds the socket (mode 0600, in a private directory made under `tmp`) and starts serving
    /// `keys`.
    pub fn start(keys: Vec<SshKey>, tmp: &Path) -> Result<SshAgent, SshAgentError> {
        let sock_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SshAgentError::Socket { path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("lighter-ssh-")
            .tempdir_in(tmp)
            .map_err(sock_err(tmp))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(sock_err(dir.path()))?;
        let socket = dir.path().join("agent.sock");
        let listener = Arc::new(UnixListener::bind(&socket).map_err(sock_err(&socket))?);
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(sock_err(&socket))?;
        let shared = Arc::new(Shared {
            keys,
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let (sh, l) = (shared.clone(), listener.clone());
        let accept = std::thread::Builder::new()
            .name("ssh-agent".into())
            .spawn(move || accept_loop(&l, &sh))
            .map_err(sock_err(&socket))?;
        Ok(SshAgent {
            dir: Some(dir),
            socket,
            shared,
            listener,
            accept: Some(accept),
        })
    }

    /// The socket to hand to clients (`SSH_AUTH_SOCK`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept: shutting a listening socket down ends it on Linux; a connection
        // does too (the loop sees `stop` and drops it).
        // SAFETY: shutdown(2) on a descriptor `self.listener` owns and keeps open.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(
            &mut *self
                .shared
                .conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (stream, _) in &conns {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for (_, t) in conns {
            let _ = t.join();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

fn accept_loop(listener: &UnixListener, sh: &Arc<Shared>) {
    for stream in listener.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // EMFILE and the like: do not spin.
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let worker = sh.clone();
        let Ok(thread) = std::thread::Builder::new()
            .name("ssh-agent-conn".into())
            .spawn(move || serve(stream, &worker.keys))
        else {
            continue;
        };
        let mut conns = sh.conns.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap finished connections so a long build does not hold their descriptors.
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut *conns)
            .into_iter()
            .partition(|(_, t)| t.is_finished());
        *conns = open;
        conns.push((handle, thread));
        drop(conns);
        for (_, t) in done {
            let _ = t.join();
        }
    }
}

/// Answers one connection's requests until it closes, sends something malformed or is shut down.
fn serve(mut stream: UnixStream, keys: &[SshKey]) {
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_MESSAGE {
            return;
        }
        let mut msg = vec![0u8; n];
        if stream.read_exact(&mut msg).is_err() {
            return;
        }
        let reply = answer(keys, &msg);
        let mut out = Vec::with_capacity(4 + reply.len());
        out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        out.extend_from_slice(&reply);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The reply (without its length) to one request (without its length).
fn answer(keys: &[SshKey], msg: &[u8]) -> Vec<u8> {
    match msg.split_first() {
        Some((&SSH_AGENTC_REQUEST_IDENTITIES, _)) => {
            let mut out = vec![SSH_AGENT_IDENTITIES_ANSWER];
            out.extend_from_slice(&(keys.len() as u32).to_be_bytes());
            for k in keys {
                put_string(&mut out, &k.blob);
                put_string(&mut out, k.comment.as_bytes());
            }
            out
        }
        Some((&SSH_AGENTC_SIGN_REQUEST, body)) => {
            sign(keys, body).unwrap_or_else(|| vec![SSH_AGENT_FAILURE])
        }
        _ => vec![SSH_AGENT_FAILURE],
    }
}

/// `string key_blob, string data, uint32 flags` -> SSH_AGENT_SIGN_RESPONSE, or None (failure) for a
/// malformed request or a key the agent does not hold.
fn sign(keys: &[SshKey], body: &[u8]) -> Option<Vec<u8>> {
    let mut r = body;
    let blob = take_string(&mut r)?;
    let data = take_string(&mut r)?;
    let flags = take_u32(&mut r)?;
    if !r.is_empty() {
        return None;
    }
    let key = keys.iter().find(|k| k.blob == blob)?;
    let (alg, sig) = key.sign(data, flags)?;
    let mut signature = Vec::new();
    put_string(&mut signature, alg.as_bytes());
    put_string(&mut signature, &sig);
    let mut out = vec![SSH_AGENT_SIGN_RESPONSE];
    put_string(&mut out, &signature);
    Some(out)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn take_u32(r: &mut &[u8]) -> Option<u32> {
    let (head, rest) = r.split_first_chunk::<4>()?;
    *r = rest;
    Some(u32::from_be_bytes(*head))
}

fn take_string<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_u32(r)? as usize;
    if r.len() < n {
        return None;
    }
    let (s, rest) = r.split_at(n);
    *r = rest;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;

    fn ed25519(seed: u8) -> SshKey {
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        let key = PrivateKey::new(KeypairData::from(kp), format!("test{seed}")).unwrap();
        SshKey::new(key, format!("test{seed}"), Path::new("test")).unwrap()
    }

    fn request(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(body);
        m
    }

    fn sign_request(blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
        let mut b = Vec::new();
        put_string(&mut b, blob);
        put_string(&mut b, data);
        b.extend_from_slice(&flags.to_be_bytes());
        request(SSH_AGENTC_SIGN_REQUEST, &b)
    }

    #[test]
    fn lists_identities_with_blob_and_comment() {
        let keys = [ed25519(1), ed25519(2)];
        let reply = answer(&keys, &[SSH_AGENTC_REQUEST_IDENTITIES]);
        assert_eq!(reply[0], SSH_AGENT_IDENTITIES_ANSWER);
        let mut r = &reply[1..];
        assert_eq!(take_u32(&mut r), Some(2));
        for k in &keys {
            assert_eq!(take_string(&mut r), Some(&k.blob[..]));
            assert_eq!(take_string(&mut r), Some(k.comment.as_bytes()));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn signs_with_the_named_key_and_the_signature_verifies() {
        let keys = [ed25519(1), ed25519(2)];
        let reply = answer(&keys, &sign_request(&keys[1].blob, b"hello", 0));
        assert_eq!(reply[0], SSH_AGENT_SIGN_RESPONSE);
        let mut r = &reply[1..];
        let mut sig = take_string(&mut r).unwrap();
        assert!(r.is_empty());
        assert_eq!(take_string(&mut sig), Some(&b"ssh-ed25519"[..]));
        let blob = take_string(&mut sig).unwrap();
        let sig = ssh_key::Signature::new(ssh_key::Algorithm::Ed25519, blob.to_vec()).unwrap();
        Verifier::verify(keys[1].key.public_key(), b"hello", &sig).unwrap();
        assert!(
            Verifier::verify(keys[0].key.public_key(), b"hello", &sig).is_err(),
            "signed by the named key only"
        );
    }

    /// The (algorithm, blob) of a SSH_AGENT_SIGN_RESPONSE.
    fn signature_of(reply: &[u8]) -> (String, Vec<u8>) {
        assert_eq!(reply[0], SSH_AGENT_SIGN_RESPONSE);
        let mut r = &reply[1..];
        let mut sig = take_string(&mut r).unwrap();
        let alg = String::from_utf8(take_string(&mut sig).unwrap().to_vec()).unwrap();
        (alg, take_string(&mut sig).unwrap().to_vec())
    }

    #[test]
    fn rsa_flags_pick_the_hash_and_signatures_verify() {
        let rsa_key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let kp = ssh_key::private::RsaKeypair::try_from(&rsa_key).unwrap();
        let key = SshKey::new(
            PrivateKey::new(KeypairData::from(kp), "rsa").unwrap(),
            "rsa".into(),
            Path::new("rsa"),
        )
        .unwrap();
        let keys = [key];
        let public = keys[0].key.public_key().clone();
        let cases = [
            (SSH_AGENT_RSA_SHA2_256, "rsa-sha2-256"),
            (SSH_AGENT_RSA_SHA2_512, "rsa-sha2-512"),
            (
                SSH_AGENT_RSA_SHA2_256 | SSH_AGENT_RSA_SHA2_512,
                "rsa-sha2-256",
            ),
            (0, "ssh-rsa"),
        ];
        for (flags, want) in cases {
            let (alg, blob) =
                signature_of(&answer(&keys, &sign_request(&keys[0].blob, b"data", flags)));
            assert_eq!(alg, want, "flags {flags}");
            if alg == "ssh-rsa" {
                let vk = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(rsa_key.to_public_key());
                let sig = rsa::pkcs1v15::Signature::try_from(&blob[..]).unwrap();
                vk.verify(b"data", &sig).unwrap();
                assert!(vk.verify(b"other", &sig).is_err());
            } else {
                let sig =
                    ssh_key::Signature::new(ssh_key::Algorithm::new(&alg).unwrap(), blob).unwrap();
                Verifier::verify(&public, b"data", &sig).unwrap();
                assert!(Verifier::verify(&public, b"other", &sig).is_err());
            }
        }
    }

    #[test]
    fn everything_else_fails() {
        let keys = [ed25519(1)];
        let other = ed25519(9);
        for msg in [
            sign_request(&other.blob, b"x", 0), // a key it does not hold
            sign_request(&keys[0].blob, b"x", 0)[..9].to_vec(), // truncated
            request(17, b"anything"),           // SSH_AGENTC_ADD_IDENTITY
            request(18, &keys[0].blob),         // SSH_AGENTC_REMOVE_IDENTITY
            request(19, b""),                   // SSH_AGENTC_REMOVE_ALL_IDENTITIES
            request(22, b""),                   // SSH_AGENTC_LOCK
            request(27, b""),                   // SSH_AGENTC_EXTENSION
            vec![],
        ] {
            assert_eq!(answer(&keys, &msg), vec![SSH_AGENT_FAILURE], "{msg:?}");
        }
    }

    #[test]
    fn bad_key_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            SshKey::load(&missing),
            Err(SshAgentError::Read { .. })
        ));
        assert!(
            matches!(SshKey::load(dir.path()), Err(SshAgentError::NotAKey { .. })),
            "a directory"
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            matches!(SshKey::load(&fifo), Err(SshAgentError::NotAKey { .. })),
            "a FIFO is refused, not waited on"
        );
        let text = dir.path().join("text");
        std::fs::write(&text, "not a key\n").unwrap();
        assert!(matches!(
            SshKey::load(&text),
            Err(SshAgentError::NotAKey { .. })
        ));
        let pem = dir.path().join("pem");
        std::fs::write(
            &pem,
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = SshKey::load(&pem).unwrap_err().to_string();
        assert!(e.contains("PKCS#1 RSA key"), "{e}");
        let garbled = dir.path().join("garbled");
        std::fs::write(
            &garbled,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            SshKey::load(&garbled),
            Err(SshAgentError::NotAKey { .. })
        ));
        // A good one round-trips through the file format.
        let good = dir.path().join("good");
        let key = ed25519(3);
        std::fs::write(
            &good,
            key.key
                .to_openssh(ssh_key::LineEnding::LF)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let loaded = SshKey::load(&good).unwrap();
        assert_eq!(
            (loaded.fingerprint(), loaded.comment.as_str()),
            (key.fingerprint(), "test3")
        );
        let shown = format!(
            "SshKey {{ fingerprint: {:?}, comment: \"test3\" }}",
            key.fingerprint()
        );
        assert_eq!(format!("{loaded:?}"), shown, "Debug shows no key material");
    }

    #[test]
    fn serves_over_its_socket_until_dropped() {
        let agent = SshAgent::start(vec![ed25519(1)], &std::env::temp_dir()).unwrap();
        let dir = agent.socket().parent().unwrap().to_path_buf();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(agent.socket()).unwrap().mode() & 0o777,
            0o600
        );
        let mut c = UnixStream::connect(agent.socket()).unwrap();
        c.write_all(&[0, 0, 0, 1, SSH_AGENTC_REQUEST_IDENTITIES])
            .unwrap();
        let mut len = [0u8; 4];
        c.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
        c.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..5], &[SSH_AGENT_IDENTITIES_ANSWER, 0, 0, 0, 1]);
        // Short-lived connections come and go; the open one is closed by the drop.
        for _ in 0..3 {
            drop(UnixStream::connect(agent.socket()).unwrap());
        }
        drop(agent);
        assert_eq!(
            c.read(&mut len).unwrap(),
            0,
            "the open connection was closed"
        );
        assert!(!dir.exists(), "the directory is removed");
    }
}
