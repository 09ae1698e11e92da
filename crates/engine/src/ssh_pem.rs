//! Private keys in the PEM formats older `ssh-keygen` wrote and `ssh-add` still reads
//! (`ssh-keygen -m PEM` or `-m PKCS8`): PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`), SEC1 EC
//! (`BEGIN EC PRIVATE KEY`) and PKCS#8 (`BEGIN PRIVATE KEY`: RSA, Ed25519, NIST P-256/P-384),
//! turned into the same [`PrivateKey`] an OpenSSH-format file gives. Encrypted PEM is refused
//! before this is reached.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair};
use ssh_key::PrivateKey;

/// The PEM block's label, if `text` holds one of the formats read here.
fn label(text: &str) -> Option<&'static str> {
    ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"]
        .into_iter()
        .find(|l| text.contains(&format!("-----BEGIN {l}-----")))
}

/// The `-----BEGIN label-----` ... `-----END label-----` block alone: `openssl ecparam -genkey`
/// writes an `EC PARAMETERS` block before the key.
fn block<'t>(text: &'t str, label: &str) -> &'t str {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => &text[b..e + end.len()],
        _ => text,
    }
}

/// Parses a PEM private key; the error says which format was expected and what failed.
pub(crate) fn parse(text: &str) -> Result<PrivateKey, String> {
    if text.contains("-----BEGIN DSA PRIVATE KEY-----") {
        return Err(
            "DSA keys are not supported (ed25519, ecdsa-sha2-nistp256/384 and rsa are)".into(),
        );
    }
    let label_found = label(text);
    let text = match label_found {
        Some(l) => block(text, l),
        None => text,
    };
    let data = match label_found {
        Some("RSA PRIVATE KEY") => rsa_keypair(
            rsa::RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| format!("PKCS#1 RSA key: {e}"))?,
        )?,
        Some("EC PRIVATE KEY") => {
            if let Ok(k) = p256::SecretKey::from_sec1_pem(text) {
                ecdsa_p256(k)
            } else {
                ecdsa_p384(
                    p384::SecretKey::from_sec1_pem(text)
                        .map_err(|e| format!("SEC1 EC key (P-256 or P-384): {e}"))?,
                )
            }
        }
        Some(_) => {
            if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
                rsa_keypair(k)?
            } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
                KeypairData::from(Ed25519Keypair::from(k))
            } else if let Ok(k) = p256::SecretKey::from_pkcs8_pem(text) {
                ecdsa_p256(k)
            } else if let Ok(k) = p384::SecretKey::from_pkcs8_pem(text) {
                ecdsa_p384(k)
            } else {
                return Err("a PKCS#8 key, but not RSA, Ed25519, P-256 or P-384".into());
            }
        }
        None => {
            return Err("no -----BEGIN OPENSSH PRIVATE KEY----- or PEM private key block".into())
        }
    };
    PrivateKey::new(data, "").map_err(|e| e.to_string())
}

fn rsa_keypair(k: rsa::RsaPrivateKey) -> Result<KeypairData, String> {
    RsaKeypair::try_from(&k)
        .map(KeypairData::from)
        .map_err(|e| format!("RSA key: {e}"))
}

fn ecdsa_p256(k: p256::SecretKey) -> KeypairData {
    let public = k.public_key();
    KeypairData::from(EcdsaKeypair::NistP256 {
        private: k.into(),
        public: public.into(),
    })
}

fn ecdsa_p384(k: p384::SecretKey) -> KeypairData {
    let public = k.public_key();
    KeypairData::from(EcdsaKeypair::NistP384 {
        private: k.into(),
        public: public.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Keys written by the real `ssh-keygen` in each legacy format: the fingerprint of the parsed
    /// key must be the one `ssh-keygen -l` prints for the same file.
    #[test]
    fn keys_from_ssh_keygen_in_every_pem_format() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            eprintln!("skipped: ssh-keygen is not installed (Debian's openssh-client; scripts/setup-peers.sh installs it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("rsa", "2048", "PEM", "RSA PRIVATE KEY"),
            ("rsa", "2048", "PKCS8", "PRIVATE KEY"),
            ("ecdsa", "256", "PEM", "EC PRIVATE KEY"),
            ("ecdsa", "384", "PEM", "EC PRIVATE KEY"),
            ("ecdsa", "256", "PKCS8", "PRIVATE KEY"),
            ("ecdsa", "384", "PKCS8", "PRIVATE KEY"),
        ];
        for (t, bits, format, want_label) in cases {
            let f = dir.path().join(format!("{t}{bits}-{format}"));
            let o = Command::new("ssh-keygen")
                .args(["-q", "-t", t, "-b", bits, "-m", format, "-N", "", "-f"])
                .arg(&f)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = std::fs::read_to_string(&f).unwrap();
            assert_eq!(
                label(&text),
                Some(want_label),
                "{t} {bits} {format}: {text:.40}"
            );
            let key = parse(&text).unwrap_or_else(|e| panic!("{t} {bits} {format}: {e}"));
            let fp = key
                .public_key()
                .fingerprint(ssh_key::HashAlg::Sha256)
                .to_string();
            let l = Command::new("ssh-keygen")
                .arg("-l")
                .arg("-f")
                .arg(&f)
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&l.stdout).to_string();
            assert!(
                listed.contains(&fp),
                "{t} {bits} {format}: {fp} not in {listed}"
            );
        }
    }

    #[test]
    fn the_key_block_is_read_after_ec_parameters() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: openssl is not installed");
            return;
        }
        let o = Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey"])
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.starts_with("-----BEGIN EC PARAMETERS-----"),
            "{text:.30}"
        );
        let key = parse(&text).unwrap();
        assert_eq!(key.algorithm().as_str(), "ecdsa-sha2-nistp256");
        let e = parse("-----BEGIN DSA PRIVATE KEY-----\nMIIB\n-----END DSA PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.contains("DSA keys are not supported"), "{e}");
    }

    #[test]
    fn broken_pem_says_which_format() {
        let e = parse("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.starts_with("PKCS#1 RSA key"), "{e}");
        let e = parse("-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.starts_with("SEC1 EC key"), "{e}");
        let e =
            parse("-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(e.contains("PKCS#8"), "{e}");
    }
}
