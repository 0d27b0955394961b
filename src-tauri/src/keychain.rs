//! The desktop's node key, kept in the OS keychain (Keychain Services, the Windows
//! Credential Manager, the Secret Service on Linux) where one answers, else in a 0600
//! file in the data directory, as before. A key found in the file while a keychain
//! answers moves into the keychain once: written, read back, and only then is the file
//! removed, so an interrupted move never loses the key (the PeerId peers know us by).
//!
//! Every keychain call runs on its own thread with a deadline: a Secret Service that is
//! activatable but never answers (a session bus without a keyring daemon, a locked
//! keyring whose prompt nobody sees) must not hold the app's start.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lattice_node::NodeKey;

/// The keychain's service name: the bundle identifier.
const SERVICE: &str = "io.lattice.desktop";
/// The file the key lives in when no keychain answers.
pub(crate) const KEY_FILE: &str = "node.key";
/// How long one keychain call may take before the file is used instead.
const DEADLINE: Duration = Duration::from_secs(3);
/// `LATTICE_KEYCHAIN=off` keeps the key in the file (for machines whose keychain the
/// operator does not want used).
pub(crate) const SWITCH_VAR: &str = "LATTICE_KEYCHAIN";

/// Where the node key was found or put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyHome {
    Keychain,
    /// Moved from this file into the keychain just now.
    MovedFromFile(PathBuf),
    File(PathBuf),
}

impl KeyHome {
    /// Where the key is, for the log.
    pub(crate) fn describe(&self) -> String {
        match self {
            KeyHome::Keychain => "in the OS keychain".into(),
            KeyHome::MovedFromFile(f) => format!("moved from {} into the OS keychain", f.display()),
            KeyHome::File(f) => format!("in {}", f.display()),
        }
    }
}

/// Why the keychain was not used, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unavailable {
    Off,
    Failed(String),
    TimedOut,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Off => write!(f, "{SWITCH_VAR}=off"),
            Unavailable::Failed(e) => write!(f, "{e}"),
            Unavailable::TimedOut => write!(f, "no answer within {} s", DEADLINE.as_secs()),
        }
    }
}

/// One keychain entry per data directory, so two app profiles (or tests) never share a
/// key.
fn account(data_dir: &Path) -> String {
    let dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_owned());
    format!("node-key:{}", dir.display())
}

/// Runs `op` on the entry for `account` on its own thread, within the deadline.
fn with_entry<T: Send + 'static>(
    account: &str,
    op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> Result<keyring::Result<T>, Unavailable> {
    let (tx, rx) = mpsc::channel();
    let account = account.to_owned();
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let result = keyring::Entry::new(SERVICE, &account).and_then(|e| op(&e));
            let _ = tx.send(result);
        })
        .map_err(|e| Unavailable::Failed(e.to_string()))?;
    rx.recv_timeout(DEADLINE).map_err(|_| Unavailable::TimedOut)
}

fn keychain_wanted() -> bool {
    !std::env::var(SWITCH_VAR).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "false" | "0" | "no"
        )
    })
}

/// The app's node key: from the keychain, else from the file, else a new one (put in the
/// keychain if it answers, else in the file).
pub(crate) fn load_or_create(data_dir: &Path) -> Result<(NodeKey, KeyHome), String> {
    load_or_create_with(data_dir, keychain_wanted())
}

fn load_or_create_with(data_dir: &Path, use_keychain: bool) -> Result<(NodeKey, KeyHome), String> {
    let file = data_dir.join(KEY_FILE);
    let from_keychain = if use_keychain {
        read_keychain(&account(data_dir))
    } else {
        Err(Unavailable::Off)
    };
    match from_keychain {
        Ok(Some(key)) => {
            if let Some(old) = read_file(&file)? {
                if old.peer_id() == key.peer_id() {
                    // A move that stopped after the write: finish it.
                    remove_file(&file)?;
                } else {
                    log::warn!(
                        "{} holds another node key ({}) than the keychain ({}): using the \
                         keychain's and leaving the file alone",
                        file.display(),
                        old.peer_id(),
                        key.peer_id()
                    );
                }
            }
            Ok((key, KeyHome::Keychain))
        }
        Ok(None) => {
            let (key, existed) = match read_file(&file)? {
                Some(key) => (key, true),
                None => (NodeKey::generate().map_err(|e| e.to_string())?, false),
            };
            match write_keychain(&account(data_dir), &key) {
                Ok(()) if existed => {
                    remove_file(&file)?;
                    log::info!(
                        "moved the node key ({}) from {} into the keychain",
                        key.peer_id(),
                        file.display()
                    );
                    Ok((key, KeyHome::MovedFromFile(file)))
                }
                Ok(()) => {
                    log::info!("created the node key {} in the keychain", key.peer_id());
                    Ok((key, KeyHome::Keychain))
                }
                Err(why) => {
                    log::warn!(
                        "the keychain did not take the node key ({why}): keeping it in {}",
                        file.display()
                    );
                    if !existed {
                        write_file(&file, &key)?;
                    }
                    Ok((key, KeyHome::File(file)))
                }
            }
        }
        Err(why) => {
            if why != Unavailable::Off {
                log::info!(
                    "no keychain ({why}): the node key is kept in {}",
                    file.display()
                );
            }
            let key = match read_file(&file)? {
                Some(key) => key,
                None => {
                    let key = NodeKey::generate().map_err(|e| e.to_string())?;
                    write_file(&file, &key)?;
                    log::info!(
                        "created the node key {} ({})",
                        file.display(),
                        key.peer_id()
                    );
                    key
                }
            };
            Ok((key, KeyHome::File(file)))
        }
    }
}

/// `Ok(None)`: the keychain answers and holds no key for this data directory.
fn read_keychain(account: &str) -> Result<Option<NodeKey>, Unavailable> {
    match with_entry(account, |e| e.get_password())? {
        Ok(text) => NodeKey::from_base64(text.trim())
            .map(Some)
            .map_err(|e| Unavailable::Failed(format!("the keychain's node key {e}"))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(Unavailable::Failed(e.to_string())),
    }
}

/// Writes the key and reads it back: only a key the keychain returns counts as kept.
fn write_keychain(account: &str, key: &NodeKey) -> Result<(), Unavailable> {
    let text = key.to_base64();
    let expected = text.clone();
    let back = with_entry(account, move |e| {
        e.set_password(&text)?;
        e.get_password()
    })?;
    match back {
        Ok(read) if read == expected => Ok(()),
        Ok(_) => Err(Unavailable::Failed(
            "the keychain returned another value than it was given".into(),
        )),
        Err(e) => Err(Unavailable::Failed(e.to_string())),
    }
}

fn read_file(path: &Path) -> Result<Option<NodeKey>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => NodeKey::from_base64(text.trim())
            .map(Some)
            .map_err(|e| format!("{}: the stored node key {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Never replaces a stored key; a crash while writing leaves no half of one.
fn write_file(path: &Path, key: &NodeKey) -> Result<(), String> {
    lattice_node::envfile::create_private(path, &key.to_base64())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn remove_file(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set by scripts/with-keyring.sh, which runs a real Secret Service (gnome-keyring)
    /// on a private session bus: the tests then demand the keychain path.
    fn real_keychain() -> bool {
        std::env::var("LATTICE_TEST_KEYCHAIN").is_ok_and(|v| v == "1")
    }

    fn forget(dir: &Path) {
        let _ = with_entry(&account(dir), |e| e.delete_credential());
    }

    #[test]
    fn the_node_key_is_the_same_on_every_launch_wherever_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (first, home) = load_or_create(dir.path()).unwrap();
        let (again, home_again) = load_or_create(dir.path()).unwrap();
        assert_eq!(first.peer_id(), again.peer_id());
        assert_eq!(home, home_again);
        if real_keychain() {
            assert_eq!(home, KeyHome::Keychain);
            assert!(
                !dir.path().join(KEY_FILE).exists(),
                "a key in the keychain leaves no file behind"
            );
            forget(dir.path());
        } else {
            assert!(matches!(home, KeyHome::File(_)), "{home:?}");
        }
    }

    #[test]
    fn a_key_file_moves_into_the_keychain_once_and_keeps_its_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let old = NodeKey::generate().unwrap();
        write_file(&dir.path().join(KEY_FILE), &old).unwrap();
        let (key, home) = load_or_create(dir.path()).unwrap();
        assert_eq!(
            key.peer_id(),
            old.peer_id(),
            "the same identity after the move"
        );
        if real_keychain() {
            assert_eq!(home, KeyHome::MovedFromFile(dir.path().join(KEY_FILE)));
            assert!(
                !dir.path().join(KEY_FILE).exists(),
                "the file is gone after the move"
            );
            let (later, home) = load_or_create(dir.path()).unwrap();
            assert_eq!(later.peer_id(), old.peer_id());
            assert_eq!(
                home,
                KeyHome::Keychain,
                "moved once, then read from the keychain"
            );
            forget(dir.path());
        } else {
            assert_eq!(home, KeyHome::File(dir.path().join(KEY_FILE)));
            assert!(
                dir.path().join(KEY_FILE).exists(),
                "without a keychain the file stays"
            );
        }
    }

    #[test]
    fn with_the_keychain_switched_off_the_key_stays_in_its_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(KEY_FILE);
        let (key, home) = load_or_create_with(dir.path(), false).unwrap();
        assert_eq!(home, KeyHome::File(file.clone()));
        assert_eq!(read_file(&file).unwrap().unwrap().peer_id(), key.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(
            write_file(&file, &key).is_err(),
            "an existing key is never overwritten"
        );
        let (again, _) = load_or_create_with(dir.path(), false).unwrap();
        assert_eq!(again.peer_id(), key.peer_id());
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_the_file_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(KEY_FILE);
        std::fs::write(&file, "not a key").unwrap();
        if real_keychain() {
            forget(dir.path());
        }
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}
