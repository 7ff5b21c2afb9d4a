//! `switchboard new NAME`: a new service workspace from the cargo-generate template in
//! this package (`cli/template/`, embedded at build time).
//!
//! The template uses cargo-generate's placeholders, and [`render`] implements the subset
//! of Liquid it needs, so both tools produce the same files:
//!
//! - `{{project-name}}` (the package name, kebab-case) and `{{crate_name}}` (snake_case);
//! - `{{switchboard_git}}` and `{{switchboard_path}}`: where Switchboard comes from (a
//!   path to a local checkout, else the git repository);
//! - `{% if VAR == "" %}`, `{% if VAR != "" %}`, `{% else %}`, `{% endif %}`.
//!
//! `cargo-generate.toml` itself is not copied (cargo-generate drops it too), and a
//! `.liquid` suffix is dropped from file names, as cargo-generate does: the template's
//! manifests are `Cargo.toml.liquid`, since `cargo package` leaves out any directory
//! holding a `Cargo.toml` (a nested package), which would leave the template out of
//! the published crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The template's files: `(path relative to template/, contents)`, sorted by path.
pub const TEMPLATE_FILES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/template_files.rs"));

/// The template's own configuration, read by cargo-generate and not copied.
pub const TEMPLATE_CONFIG: &str = "cargo-generate.toml";

/// The suffix dropped from a template file's name when it is rendered (cargo-generate's
/// convention): `Cargo.toml.liquid` becomes `Cargo.toml`.
pub const LIQUID_SUFFIX: &str = ".liquid";

/// Switchboard's git repository: the default source of the generated dependencies.
pub const DEFAULT_GIT: &str = env!("CARGO_PKG_REPOSITORY");

/// The longest service name accepted (Cargo's limit for a crate name).
pub const MAX_NAME_LEN: usize = 64;

/// The longest name the deploy program takes as the app (its resources' name prefix)
/// without `pulumi config set app`.
pub const MAX_APP_NAME_LEN: usize = 20;

/// Why a service could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name cannot be a package name.
    #[error("invalid service name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target directory exists; nothing was written.
    #[error("{} already exists: choose another name or --path (nothing was written)", .0.display())]
    Exists(PathBuf),
    /// `--switchboard-path` is not a Switchboard checkout.
    #[error("{} is not a Switchboard checkout: {reason}", path.display())]
    NotACheckout {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A value cannot be written into the generated `Cargo.toml`.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        /// Which option.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The template is malformed (a bug in `template/`).
    #[error("template file {file}: {message}")]
    Template {
        /// The template file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the generated workspace takes Switchboard from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A git dependency on this repository (the default).
    Git(String),
    /// Path dependencies on a local checkout (its root: `switchboard/`, `deploy/` inside).
    Path(PathBuf),
}

/// Rust keywords (strict, reserved and 2024's `gen`): not crate names.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names Cargo reserves, Windows device names, and the generated crates' own
/// dependencies (a package may not share its library's name with one).
const RESERVED: &[&str] = &[
    "alloc",
    "build",
    "core",
    "deps",
    "examples",
    "incremental",
    "proc-macro",
    "proc_macro",
    "std",
    "test",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
    "switchboard",
    "switchboard-deploy",
    "switchboard-macros",
    "switchboard-cli",
    "serde",
    "serde-json",
    "tokio",
    "tokio-tungstenite",
    "futures-util",
];

/// Checks a service name: it becomes the package (`NAME`), its library (`NAME` with `_`),
/// the binary, the deploy package (`NAME-deploy`) and the app's name. Lowercase ASCII
/// letters, digits and `-`, starting with a letter, not ending with `-`, at most
/// [`MAX_NAME_LEN`] characters, not a Rust keyword or a reserved name.
pub fn validate_name(name: &str) -> Result<(), NewError> {
    let invalid = |reason: &str| NewError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(&format!(
            "it is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(
            "use only lowercase ASCII letters, digits and `-` (e.g. `my-service`)",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid("it must start with a letter"));
    }
    if name.ends_with('-') {
        return Err(invalid("it must not end with `-`"));
    }
    if KEYWORDS.contains(&crate_name(name).as_str()) {
        return Err(invalid("it is a Rust keyword"));
    }
    if RESERVED.contains(&name) {
        return Err(invalid(
            "it is reserved by Cargo or Windows, or is the name of a dependency",
        ));
    }
    Ok(())
}

/// The library name of a service: `-` becomes `_`.
pub fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The placeholders' values for a (valid) name and source. Values that land in TOML
/// strings are escaped for them.
pub fn variables(name: &str, source: &Source) -> Result<BTreeMap<&'static str, String>, NewError> {
    let (git, path) = match source {
        Source::Git(url) => (toml_escape("--switchboard-git", url)?, String::new()),
        Source::Path(path) => {
            let text = path.to_str().ok_or(NewError::InvalidValue {
                what: "--switchboard-path",
                value: path.display().to_string(),
                reason: "the path is not UTF-8",
            })?;
            (
                toml_escape("--switchboard-git", DEFAULT_GIT)?,
                toml_escape("--switchboard-path", text)?,
            )
        }
    };
    Ok(BTreeMap::from([
        ("project-name", name.to_owned()),
        ("crate_name", crate_name(name)),
        ("switchboard_git", git),
        ("switchboard_path", path),
    ]))
}

/// Escapes a value for a TOML basic string; control characters are refused.
fn toml_escape(what: &'static str, value: &str) -> Result<String, NewError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(NewError::InvalidValue {
            what,
            value: value.to_owned(),
            reason: "it must be non-empty, without control characters",
        });
    }
    Ok(value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Renders one template text: `{{ var }}` and `{% if var == "" %}`/`!=`, `{% else %}`,
/// `{% endif %}` (nestable). Unknown variables, unknown tags and unbalanced blocks are
/// errors, so nothing unrendered can reach a generated file.
pub fn render(text: &str, vars: &BTreeMap<&'static str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    // One entry per open `if`: (the condition held, inside its `else`).
    let mut blocks: Vec<(bool, bool)> = Vec::new();
    let active = |blocks: &[(bool, bool)]| blocks.iter().all(|&(cond, in_else)| cond != in_else);
    let mut rest = text;
    loop {
        let next = [rest.find("{{"), rest.find("{%")]
            .into_iter()
            .flatten()
            .min();
        let Some(start) = next else {
            if active(&blocks) {
                out.push_str(rest);
            }
            break;
        };
        if active(&blocks) {
            out.push_str(&rest[..start]);
        }
        let is_tag = rest[start..].starts_with("{%");
        let close = if is_tag { "%}" } else { "}}" };
        let body_start = start + 2;
        let len = rest[body_start..]
            .find(close)
            .ok_or_else(|| format!("unclosed `{}`", &rest[start..body_start]))?;
        let body = rest[body_start..body_start + len].trim();
        rest = &rest[body_start + len + 2..];
        if !is_tag {
            let value = vars
                .get(body)
                .ok_or_else(|| format!("unknown variable `{body}`"))?;
            if active(&blocks) {
                out.push_str(value);
            }
            continue;
        }
        let words: Vec<&str> = body.split_whitespace().collect();
        match words.as_slice() {
            ["if", var, op @ ("==" | "!="), "\"\""] => {
                let value = vars
                    .get(var)
                    .ok_or_else(|| format!("unknown variable `{var}`"))?;
                let empty = value.is_empty();
                blocks.push((if *op == "==" { empty } else { !empty }, false));
            }
            ["else"] => match blocks.last_mut() {
                Some(block) if !block.1 => block.1 = true,
                _ => return Err("`else` without `if`".to_owned()),
            },
            ["endif"] => {
                blocks.pop().ok_or("`endif` without `if`")?;
            }
            _ => return Err(format!("unsupported tag `{{% {body} %}}`")),
        }
    }
    if blocks.is_empty() {
        Ok(out)
    } else {
        Err("`if` without `endif`".to_owned())
    }
}

/// Every file of the generated workspace: `(relative path, contents)`.
pub fn render_all(
    vars: &BTreeMap<&'static str, String>,
) -> Result<Vec<(String, String)>, NewError> {
    TEMPLATE_FILES
        .iter()
        .filter(|(path, _)| *path != TEMPLATE_CONFIG)
        .map(|(path, text)| {
            let template = |message| NewError::Template {
                file: (*path).to_owned(),
                message,
            };
            let path = path.strip_suffix(LIQUID_SUFFIX).unwrap_or(path);
            Ok((
                render(path, vars).map_err(template)?,
                render(text, vars).map_err(template)?,
            ))
        })
        .collect()
}

/// Checks that `path` is a Switchboard checkout and makes it absolute.
pub fn checkout(path: &Path) -> Result<PathBuf, NewError> {
    let abs = path.canonicalize().map_err(|e| NewError::NotACheckout {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    for member in ["switchboard", "deploy"] {
        if !abs.join(member).join("Cargo.toml").is_file() {
            return Err(NewError::NotACheckout {
                path: path.to_owned(),
                reason: format!("no {member}/Cargo.toml"),
            });
        }
    }
    Ok(abs)
}

/// Creates the service `name` in `dir` (which must not exist) from the template. On an
/// error after `dir` was created, `dir` is removed again.
pub fn generate(name: &str, dir: &Path, source: &Source) -> Result<(), NewError> {
    validate_name(name)?;
    let vars = variables(name, source)?;
    let files = render_all(&vars)?;
    if dir.symlink_metadata().is_ok() {
        return Err(NewError::Exists(dir.to_owned()));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| NewError::Io { path, source }
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // `create_dir` fails if `dir` appeared meanwhile: never write into someone's directory.
    std::fs::create_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => NewError::Exists(dir.to_owned()),
        _ => io(dir)(e),
    })?;
    let written = write_files(dir, &files);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

fn write_files(dir: &Path, files: &[(String, String)]) -> Result<(), NewError> {
    for (rel, contents) in files {
        let path = rel.split('/').fold(dir.to_owned(), |p, part| p.join(part));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| NewError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, contents).map_err(|source| NewError::Io {
            path: path.clone(),
            source,
        })?;
        #[cfg(unix)]
        if rel.starts_with(".ci/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
                |source| NewError::Io {
                    path: path.clone(),
                    source,
                },
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(test: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!(
            "switchboard-cli-{test}-{}-{nanos}",
            std::process::id()
        ))
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn good_names_are_accepted() {
        for name in ["demo-svc", "a", "svc2", "my-chat-service", &"a".repeat(64)] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn bad_names_are_rejected_with_a_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("My-Svc", "lowercase"),
            ("my_svc", "lowercase ASCII letters, digits and `-`"),
            ("my svc", "lowercase"),
            ("café", "lowercase"),
            ("../evil", "lowercase"),
            ("9lives", "start with a letter"),
            ("-svc", "start with a letter"),
            ("svc-", "end with `-`"),
            ("fn", "keyword"),
            ("self", "keyword"),
            ("test", "reserved"),
            ("switchboard", "reserved"),
            ("con", "reserved"),
        ] {
            let err = validate_name(name).unwrap_err();
            assert!(
                matches!(&err, NewError::InvalidName { name: n, .. } if n == name),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(reason), "{name}: {err}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(
            validate_name(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than 64")
        );
    }

    #[test]
    fn the_embedded_template_is_every_file_of_template_dir() {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    let parts: Vec<_> = rel.iter().map(|p| p.to_str().unwrap()).collect();
                    out.push(parts.join("/"));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("template");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let embedded: Vec<String> = TEMPLATE_FILES
            .iter()
            .map(|(p, _)| (*p).to_owned())
            .collect();
        assert_eq!(embedded, on_disk);
        for (path, text) in TEMPLATE_FILES {
            let disk = std::fs::read_to_string(root.join(path)).unwrap();
            assert_eq!(*text, disk, "{path} is stale: rebuild");
        }
        for must in [
            "Cargo.toml.liquid",
            "app/Cargo.toml.liquid",
            "deploy/Cargo.toml.liquid",
            "app/src/lib.rs",
            "app/src/main.rs",
            "app/web/index.html",
            "deploy/src/main.rs",
            "Pulumi.yaml",
            ".ci/run",
            "README.md",
            ".gitignore",
            TEMPLATE_CONFIG,
        ] {
            assert!(on_disk.iter().any(|p| p == must), "template/{must}");
        }
    }

    #[test]
    fn every_file_renders_with_no_placeholder_left() {
        let sources = [Source::Git(DEFAULT_GIT.to_owned()), Source::Path(repo())];
        for source in sources {
            let vars = variables("demo-svc", &source).unwrap();
            let files = render_all(&vars).unwrap();
            assert_eq!(files.len(), TEMPLATE_FILES.len() - 1);
            assert!(files.iter().all(|(p, _)| p != TEMPLATE_CONFIG));
            assert!(files.iter().all(|(p, _)| !p.ends_with(LIQUID_SUFFIX)));
            assert!(files.iter().any(|(p, _)| p == "deploy/Cargo.toml"));
            for (path, text) in &files {
                for marker in ["{{", "}}", "{%", "%}"] {
                    assert!(!text.contains(marker), "{path} keeps {marker:?}");
                }
            }
            let cargo = &files.iter().find(|(p, _)| p == "Cargo.toml").unwrap().1;
            let app = &files.iter().find(|(p, _)| p == "app/Cargo.toml").unwrap().1;
            assert!(app.contains("name = \"demo-svc\"") && app.contains("name = \"demo_svc\""));
            match &source {
                Source::Git(url) => {
                    assert!(cargo.contains(&format!("switchboard = {{ git = \"{url}\" }}")));
                    assert!(cargo.contains(&format!(
                        "switchboard-deploy = {{ git = \"{url}\", default-features = false }}"
                    )));
                    assert!(!cargo.contains("path ="));
                }
                Source::Path(root) => {
                    let root = root.to_str().unwrap();
                    assert!(cargo.contains(&format!(
                        "switchboard = {{ path = \"{root}/switchboard\" }}"
                    )));
                    assert!(cargo.contains(&format!(
                        "switchboard-deploy = {{ path = \"{root}/deploy\", default-features = false }}"
                    )));
                    assert!(!cargo.contains("git ="));
                }
            }
        }
    }

    #[test]
    fn the_renderer_substitutes_selects_and_refuses_what_it_does_not_know() {
        let vars = BTreeMap::from([("a", "x".to_owned()), ("e", String::new())]);
        assert_eq!(render("<{{a}}|{{ a }}>", &vars).unwrap(), "<x|x>");
        assert_eq!(
            render(
                "{% if e == \"\" %}E{% else %}N{% endif %}-{% if a != \"\" %}{{a}}{% endif %}",
                &vars
            )
            .unwrap(),
            "E-x"
        );
        assert_eq!(
            render(
                "{% if a == \"\" %}1{% if e == \"\" %}2{% endif %}{% else %}3{% endif %}",
                &vars
            )
            .unwrap(),
            "3"
        );
        for (bad, why) in [
            ("{{b}}", "unknown variable `b`"),
            ("{{a", "unclosed"),
            ("{% if b == \"\" %}{% endif %}", "unknown variable `b`"),
            ("{% if a %}{% endif %}", "unsupported tag"),
            ("{% for x in y %}", "unsupported tag"),
            ("{% else %}", "`else` without `if`"),
            (
                "{% if a == \"\" %}{% else %}{% else %}{% endif %}",
                "`else` without `if`",
            ),
            ("{% endif %}", "`endif` without `if`"),
            ("{% if a == \"\" %}", "without `endif`"),
        ] {
            let err = render(bad, &vars).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn toml_values_are_escaped_and_control_characters_refused() {
        let vars = variables("x", &Source::Path(PathBuf::from(r#"C:\a "b""#))).unwrap();
        assert_eq!(vars["switchboard_path"], r#"C:\\a \"b\""#);
        assert!(matches!(
            variables("x", &Source::Git("https://x\n".to_owned())),
            Err(NewError::InvalidValue { .. })
        ));
        assert!(matches!(
            variables("x", &Source::Git(String::new())),
            Err(NewError::InvalidValue { .. })
        ));
    }

    #[test]
    fn an_existing_directory_is_refused_and_left_alone() {
        let dir = temp_dir("exists");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let err = generate("demo-svc", &dir, &Source::Git(DEFAULT_GIT.to_owned())).unwrap_err();
        assert!(matches!(&err, NewError::Exists(p) if p == &dir), "{err}");
        assert!(err.to_string().contains("already exists"));
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
            "mine"
        );
        // An existing file is refused too.
        let file = dir.join("keep.txt");
        assert!(matches!(
            generate("demo-svc", &file, &Source::Git(DEFAULT_GIT.to_owned())),
            Err(NewError::Exists(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generate_writes_every_file_and_a_runnable_ci_script() {
        let dir = temp_dir("generate").join("demo-svc");
        generate("demo-svc", &dir, &Source::Path(repo())).unwrap();
        let vars = variables("demo-svc", &Source::Path(repo())).unwrap();
        for (rel, text) in render_all(&vars).unwrap() {
            assert_eq!(
                std::fs::read_to_string(dir.join(&rel)).unwrap(),
                text,
                "{rel}"
            );
        }
        assert!(!dir.join(TEMPLATE_CONFIG).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(".ci/run"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_path_that_is_not_a_checkout_is_refused() {
        let dir = temp_dir("not-a-checkout");
        std::fs::create_dir_all(&dir).unwrap();
        let err = checkout(&dir).unwrap_err();
        assert!(err.to_string().contains("switchboard/Cargo.toml"), "{err}");
        assert!(checkout(&dir.join("missing")).is_err());
        assert_eq!(checkout(&repo()).unwrap(), repo().canonicalize().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
