//! Editing an env file in place: the keys and settings `lattice keygen`, `lattice init`
//! and the desktop app write, beside the lines a person wrote.
//!
//! Edits keep every other line as it was, replace the first line of each variable set
//! and comment out later repeats (so what dotenv reads is what was written). Files are
//! written whole, to a temporary file beside them that is synced and then renamed, with
//! owner-only permissions: a crash or a full disk leaves the old file or the new one,
//! never half of a key.

use std::io::Write;
use std::path::Path;

/// The file's text, or "" when it does not exist.
pub fn read(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// The variable a line sets (`NAME=...` or `export NAME=...`), and its value unquoted.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let l = line.trim_start();
    if l.starts_with('#') {
        return None;
    }
    let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
    let (name, value) = l.split_once('=')?;
    Some((name.trim(), value.trim().trim_matches(['"', '\''])))
}

/// The first non-empty value `text` gives `var`.
pub fn value_of(text: &str, var: &str) -> Option<String> {
    text.lines()
        .filter_map(assignment)
        .find(|(name, value)| *name == var && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// `text` with each `(variable, value)` set: the first line of a variable replaced,
/// later repeats commented out, variables not there yet appended in order.
pub fn with_vars(text: &str, vars: &[(&str, String)]) -> String {
    let mut done = vec![false; vars.len()];
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let at =
                assignment(line).and_then(|(name, _)| vars.iter().position(|(v, _)| *v == name));
            match at {
                Some(i) if !done[i] => {
                    done[i] = true;
                    format!("{}={}", vars[i].0, vars[i].1)
                }
                Some(_) => format!("# {line}"),
                None => line.to_string(),
            }
        })
        .collect();
    for (i, (var, value)) in vars.iter().enumerate() {
        if !done[i] {
            lines.push(format!("{var}={value}"));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Writes `text` to a synced temporary file beside `path` (mode 0600 on Unix).
fn staged(path: &Path, text: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("env")
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Replaces `path` with `text`, atomically, owner-only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = staged(path, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates `path` holding `text`, atomically, owner-only; an existing file is left as
/// it was and the error is `AlreadyExists`.
pub fn create_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = staged(path, text)?;
    // A hard link never replaces its target: of two racing writers one wins whole.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_variables_keeps_other_lines_replaces_the_first_and_comments_repeats() {
        let text = "# mine\nA=1\nexport B = \"old\"\nB=again\n\nC=3";
        let out = with_vars(text, &[("B", "new".into()), ("D", "4".into())]);
        assert_eq!(out, "# mine\nA=1\nB=new\n# B=again\n\nC=3\nD=4\n");
        assert_eq!(value_of(&out, "B").as_deref(), Some("new"));
        assert_eq!(value_of("# B=x\nB=\nB='y'", "B").as_deref(), Some("y"));
        assert_eq!(value_of("A=1", "B"), None);
    }

    #[test]
    fn written_files_are_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(".env");
        write_private(&path, "A=1\n").unwrap();
        write_private(&path, "A=2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".env"], "no temporary file is left behind");
    }

    #[test]
    fn creating_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        create_private(&path, "first").unwrap();
        let err = create_private(&path, "second").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
