//! Pairing and tokens: a phone shows a short one-time code (typed, or carried in the QR
//! code's address) and gets a long random token; only the token's SHA-256 is kept, in
//! memory and in the devices file, so a copy of that file lets nobody in.
//!
//! Pure: the clock and the random bytes come in as arguments, so every rule here is
//! tested without waiting or guessing.
//!
//! **Invariant:** a pairing code works once, for [`CODE_LIFETIME`], and dies after
//! [`CODE_ATTEMPTS`] wrong guesses (a 6-digit code then has a 5 in a million chance).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a pairing code is valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Wrong codes accepted before the code is withdrawn.
pub const CODE_ATTEMPTS: u32 = 5;
/// Digits in a pairing code.
pub const CODE_DIGITS: usize = 6;
/// Paired devices kept at most (pairing one more is refused until one is revoked).
pub const MAX_DEVICES: usize = 32;

/// A paired phone (or browser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Short id, for `klang ctl remote revoke ID`.
    pub id: String,
    /// What the browser called itself when it paired (trimmed User-Agent).
    pub name: String,
    /// Unix time of pairing, in seconds.
    pub paired_at: u64,
    /// SHA-256 of the token, hex.
    pub token_sha256: String,
}

/// The devices file: `$XDG_STATE_HOME/klang/remote-devices.toml`, mode 0600.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DevicesFile {
    device: Vec<Device>,
}

/// A code waiting to be typed.
#[derive(Debug, Clone)]
struct PendingCode {
    code: String,
    expires_ms: u64,
    wrong: u32,
}

/// Why pairing was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// No code is waiting (none made, used, expired or withdrawn).
    #[error(
        "no pairing code is active (help: run `klang ctl remote pair` on the computer for a new one)"
    )]
    NoCode,
    /// The code is wrong.
    #[error("wrong pairing code ({left} tries left)")]
    Wrong {
        /// Tries left before the code is withdrawn.
        left: u32,
    },
    /// Too many devices are paired.
    #[error(
        "{MAX_DEVICES} devices are paired already (help: `klang ctl remote revoke ID` one first)"
    )]
    Full,
}

/// Secrets handed out by [`Pairing::pair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    /// The new device's id.
    pub id: String,
    /// The bearer token (64 hex digits); shown once, never stored.
    pub token: String,
}

/// Codes, devices, and where the devices are saved.
#[derive(Debug)]
pub struct Pairing {
    devices: Vec<Device>,
    code: Option<PendingCode>,
    file: Option<PathBuf>,
}

/// Hex of SHA-256 of `token`.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A pairing code of [`CODE_DIGITS`] decimal digits from `random` (uniform: rejection of
/// the biased top of the `u32` range).
pub fn code_from(random: &mut impl FnMut() -> u32) -> String {
    let modulus = 10u32.pow(CODE_DIGITS as u32);
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let r = random();
        if r < limit {
            return format!("{:0width$}", r % modulus, width = CODE_DIGITS);
        }
    }
}

/// `n` random bytes from the OS, as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex(&bytes)
}

/// A `u32` from the OS's random source.
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("the OS random source works");
    u32::from_le_bytes(b)
}

/// The devices file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a devices file.
    #[error("{}: {message} (help: delete the file; every phone then pairs again)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Pairing {
    /// No devices, no code, nothing saved (tests, or no state directory).
    pub fn in_memory() -> Pairing {
        Pairing {
            devices: Vec::new(),
            code: None,
            file: None,
        }
    }

    /// Loads the paired devices from `file` (missing: none) and saves there on change.
    pub fn load(file: &Path) -> Result<Pairing, DevicesError> {
        let devices = match std::fs::read_to_string(file) {
            Ok(text) => {
                toml::from_str::<DevicesFile>(&text)
                    .map_err(|e| DevicesError::Parse {
                        path: file.to_owned(),
                        message: e.to_string(),
                    })?
                    .device
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(DevicesError::Io {
                    path: file.to_owned(),
                    source,
                });
            }
        };
        Ok(Pairing {
            devices,
            code: None,
            file: Some(file.to_owned()),
        })
    }

    /// The paired devices.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Makes a new pairing code (replacing any other), valid until `now_ms` +
    /// [`CODE_LIFETIME`].
    pub fn new_code(&mut self, now_ms: u64, random: &mut impl FnMut() -> u32) -> String {
        let code = code_from(random);
        self.code = Some(PendingCode {
            code: code.clone(),
            expires_ms: now_ms + CODE_LIFETIME.as_millis() as u64,
            wrong: 0,
        });
        code
    }

    /// Seconds the active code has left, if there is one.
    pub fn code_left_s(&self, now_ms: u64) -> Option<u64> {
        self.code
            .as_ref()
            .filter(|c| c.expires_ms > now_ms)
            .map(|c| (c.expires_ms - now_ms) / 1000)
    }

    /// Checks `code`; on success the code is used up and a new device with a fresh
    /// `token` is saved. `name` is what the browser says it is.
    pub fn pair(
        &mut self,
        code: &str,
        name: &str,
        now_ms: u64,
        token: String,
        id: String,
    ) -> Result<Paired, PairError> {
        let pending = match &mut self.code {
            Some(c) if c.expires_ms > now_ms => c,
            _ => {
                self.code = None;
                return Err(PairError::NoCode);
            }
        };
        let given = code.trim().as_bytes();
        let right =
            given.len() == pending.code.len() && bool::from(given.ct_eq(pending.code.as_bytes()));
        if !right {
            pending.wrong += 1;
            let left = CODE_ATTEMPTS.saturating_sub(pending.wrong);
            if left == 0 {
                self.code = None;
            }
            return Err(PairError::Wrong { left });
        }
        if self.devices.len() >= MAX_DEVICES {
            return Err(PairError::Full);
        }
        self.code = None;
        let name: String = name.chars().filter(|c| !c.is_control()).take(80).collect();
        self.devices.push(Device {
            id: id.clone(),
            name,
            paired_at: now_ms / 1000,
            token_sha256: token_hash(&token),
        });
        Ok(Paired { id, token })
    }

    /// The device whose token this is, if any (constant-time over every stored hash).
    pub fn check(&self, token: &str) -> Option<&Device> {
        let h = token_hash(token);
        let mut found = None;
        for d in &self.devices {
            if bool::from(d.token_sha256.as_bytes().ct_eq(h.as_bytes())) {
                found = Some(d);
            }
        }
        found
    }

    /// Revokes one device by id, or all of them (`None`); returns how many went.
    pub fn revoke(&mut self, id: Option<&str>) -> usize {
        let before = self.devices.len();
        match id {
            Some(id) => self.devices.retain(|d| d.id != id),
            None => self.devices.clear(),
        }
        before - self.devices.len()
    }

    /// Writes the devices file atomically with mode 0600 (no-op without a file).
    pub fn save(&self) -> Result<(), DevicesError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let io = |source| DevicesError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string(&DevicesFile {
            device: self.devices.clone(),
        })
        .expect("devices are plain data");
        let tmp = dir.join(format!(".remote-devices.tmp-{}", std::process::id()));
        let result = (|| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(
                b"# phones paired with klang's remote (klang ctl remote devices|revoke)\n",
            )?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(start: u32) -> impl FnMut() -> u32 {
        let mut n = start;
        move || {
            n = n.wrapping_add(1);
            n
        }
    }

    #[test]
    fn a_code_pairs_once() {
        let mut p = Pairing::in_memory();
        let code = p.new_code(0, &mut counter(123_455));
        assert_eq!(code, "123456");
        let ok = p
            .pair(&code, "Phone", 1000, "t1".into(), "a1".into())
            .unwrap();
        assert_eq!(ok.token, "t1");
        assert_eq!(p.check("t1").unwrap().id, "a1");
        assert_eq!(
            p.pair(&code, "Other", 2000, "t2".into(), "a2".into()),
            Err(PairError::NoCode),
            "used up"
        );
        assert!(p.check("t2").is_none());
    }

    #[test]
    fn codes_expire() {
        let mut p = Pairing::in_memory();
        let code = p.new_code(0, &mut counter(0));
        assert_eq!(p.code_left_s(0), Some(600));
        let late = CODE_LIFETIME.as_millis() as u64;
        assert_eq!(p.code_left_s(late), None);
        assert_eq!(
            p.pair(&code, "", late, "t".into(), "a".into()),
            Err(PairError::NoCode)
        );
    }

    #[test]
    fn wrong_guesses_withdraw_the_code() {
        let mut p = Pairing::in_memory();
        let code = p.new_code(0, &mut counter(41));
        for left in (0..CODE_ATTEMPTS).rev() {
            assert_eq!(
                p.pair("999999", "", 1, "t".into(), "a".into()),
                Err(PairError::Wrong { left })
            );
        }
        // Even the right code is refused now: the guesser has spent the attempts.
        assert_eq!(
            p.pair(&code, "", 1, "t".into(), "a".into()),
            Err(PairError::NoCode)
        );
        assert!(p.devices().is_empty());
    }

    #[test]
    fn codes_are_six_digits_and_unbiased() {
        // The value just above the last whole multiple of 10^6 is rejected.
        let mut values = [u32::MAX, 7].into_iter();
        assert_eq!(code_from(&mut || values.next().unwrap()), "000007");
        assert_eq!(code_from(&mut || 999_999), "999999");
    }

    #[test]
    fn revoke_one_or_all() {
        let mut p = Pairing::in_memory();
        for i in 0..3 {
            let c = p.new_code(0, &mut counter(i));
            p.pair(&c, "", 0, format!("t{i}"), format!("d{i}")).unwrap();
        }
        assert_eq!(p.revoke(Some("d1")), 1);
        assert!(p.check("t1").is_none() && p.check("t0").is_some());
        assert_eq!(p.revoke(Some("nope")), 0);
        assert_eq!(p.revoke(None), 2);
        assert!(p.check("t0").is_none());
    }

    #[test]
    fn only_hashes_are_saved_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/remote-devices.toml");
        let mut p = Pairing::load(&file).unwrap();
        let c = p.new_code(0, &mut counter(9));
        p.pair(&c, "Pixel\u{7}", 5000, "secret-token".into(), "d".into())
            .unwrap();
        p.save().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("secret-token"), "{text}");
        assert!(text.contains(&token_hash("secret-token")));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = Pairing::load(&file).unwrap();
        assert_eq!(back.check("secret-token").unwrap().name, "Pixel");
        std::fs::write(&file, "device = 3").unwrap();
        assert!(
            Pairing::load(&file)
                .unwrap_err()
                .to_string()
                .contains("delete the file")
        );
    }
}
