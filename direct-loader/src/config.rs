//! Parser for `limine.conf`, the one boot configuration both boot paths read.
//!
//! It understands the subset of Limine 8's format that Machina uses: global options
//! (`timeout`, `default_entry`), entries opened by `/Name` lines, and per-entry `protocol`,
//! `path` / `kernel_path`, `cmdline` / `kernel_cmdline`, `module_path`, and
//! `module_cmdline` / `module_string`. Unknown options are ignored, as Limine does.
//!
//! It must never allocate: the loader has no heap. Everything borrows from the file text.

/// The most modules one entry may name.
pub const MAX_MODULES: usize = 16;

/// Why a configuration could not be used. `line` is 1-based (0 when no line applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub kind: ConfigErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A line inside an entry that is neither `key: value`, a comment, nor blank.
    NotAnOption,
    /// An option that needs an entry appeared before the first `/Entry` line.
    OptionOutsideEntry,
    /// `module_cmdline` with no `module_path` before it in the same entry.
    CmdlineWithoutModule,
    /// More than [`MAX_MODULES`] modules in one entry.
    TooManyModules,
    /// A path that is not `resource():/absolute/path`.
    BadPath,
    /// The file has no bootable entry, or the chosen one does not exist.
    NoSuchEntry,
    /// The chosen entry has no `path`/`kernel_path`.
    NoKernelPath,
    /// The chosen entry's protocol is not `limine`.
    NotLimineProtocol,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self.kind {
            ConfigErrorKind::NotAnOption => "expected `key: value`",
            ConfigErrorKind::OptionOutsideEntry => "option outside any /entry",
            ConfigErrorKind::CmdlineWithoutModule => "module_cmdline before any module_path",
            ConfigErrorKind::TooManyModules => "too many modules in one entry",
            ConfigErrorKind::BadPath => "path must look like boot():/some/file",
            ConfigErrorKind::NoSuchEntry => "no such bootable entry",
            ConfigErrorKind::NoKernelPath => "entry has no path (kernel_path)",
            ConfigErrorKind::NotLimineProtocol => "entry protocol is not limine",
        };
        if self.line > 0 {
            write!(f, "limine.conf line {}: {}", self.line, what)
        } else {
            write!(f, "limine.conf: {what}")
        }
    }
}

/// A module named by an entry: its path inside the boot volume and its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModuleSpec<'a> {
    pub path: &'a str,
    pub cmdline: &'a str,
}

/// One bootable entry of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEntry<'a> {
    pub name: &'a str,
    /// Path of the kernel inside the boot volume, with its leading slash (`/boot/mach-kernel`).
    pub kernel_path: &'a str,
    pub cmdline: &'a str,
    modules: [ModuleSpec<'a>; MAX_MODULES],
    module_count: usize,
}

impl<'a> BootEntry<'a> {
    pub fn modules(&self) -> &[ModuleSpec<'a>] {
        self.modules.get(..self.module_count).unwrap_or(&[])
    }
}

/// One `key: value` line, or an entry header, with its 1-based line number.
enum Line<'a> {
    Entry(&'a str),
    Option { key: &'a str, value: &'a str },
}

fn lines(text: &str) -> impl Iterator<Item = (usize, Result<Line<'_>, ConfigErrorKind>)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let parsed = if let Some(rest) = line.strip_prefix('/') {
            let name = rest.trim_start_matches('/');
            let name = name.strip_prefix('+').unwrap_or(name);
            Ok(Line::Entry(name.trim()))
        } else if let Some((key, value)) = line.split_once(':') {
            Ok(Line::Option { key: key.trim(), value: value.trim() })
        } else {
            Err(ConfigErrorKind::NotAnOption)
        };
        Some((i + 1, parsed))
    })
}

/// Strip the `resource(arg):` prefix of a Limine path, leaving `/the/path`.
pub fn volume_path(path: &str) -> Option<&str> {
    let rest = match path.find("):") {
        Some(close) if path.get(..close).is_some_and(|r| r.contains('(')) => path.get(close + 2..)?,
        _ => path,
    };
    (rest.starts_with('/') && rest.len() > 1).then_some(rest)
}

/// The global option `default_entry` (1-based), if present and valid.
fn default_entry(text: &str) -> Result<Option<usize>, ConfigError> {
    for (line, parsed) in lines(text) {
        match parsed.map_err(|kind| ConfigError { line, kind })? {
            Line::Entry(_) => break,
            Line::Option { key, value } if key.eq_ignore_ascii_case("default_entry") => {
                return Ok(value.parse().ok().filter(|n: &usize| *n > 0));
            }
            Line::Option { .. } => {}
        }
    }
    Ok(None)
}

/// Parse every entry; `visit` sees each complete one in file order and may stop the walk by
/// returning `Some`.
fn walk<'a, T>(
    text: &'a str,
    mut visit: impl FnMut(usize, &BootEntry<'a>, Option<&'a str>) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    let mut current: Option<(BootEntry<'a>, Option<&'a str>, usize)> = None;
    let mut index = 0;
    let mut finish = |entry: Option<(BootEntry<'a>, Option<&'a str>, usize)>,
                      index: &mut usize|
     -> Result<Option<T>, ConfigError> {
        if let Some((entry, protocol, header_line)) = entry {
            // Entries without a protocol are directories in Limine's menu: not bootable.
            if protocol.is_some() || !entry.kernel_path.is_empty() {
                *index += 1;
                if entry.kernel_path.is_empty() {
                    return Err(ConfigError { line: header_line, kind: ConfigErrorKind::NoKernelPath });
                }
                return Ok(visit(*index, &entry, protocol));
            }
        }
        Ok(None)
    };
    for (line, parsed) in lines(text) {
        let err = |kind| ConfigError { line, kind };
        match parsed.map_err(err)? {
            Line::Entry(name) => {
                if let Some(found) = finish(current.take(), &mut index)? {
                    return Ok(Some(found));
                }
                let entry = BootEntry {
                    name,
                    kernel_path: "",
                    cmdline: "",
                    modules: [ModuleSpec::default(); MAX_MODULES],
                    module_count: 0,
                };
                current = Some((entry, None, line));
            }
            Line::Option { key, value } => {
                let key_is = |k: &str| key.eq_ignore_ascii_case(k);
                let Some((entry, protocol, _)) = current.as_mut() else {
                    let global = [
                        "timeout",
                        "default_entry",
                        "serial",
                        "verbose",
                        "graphics",
                        "interface_branding",
                        "wallpaper",
                        "quiet",
                        "remember_last_entry",
                        "hash_mismatch_panic",
                        "editor_enabled",
                        "term_palette",
                        "randomise_memory",
                        "randomize_memory",
                        "interface_resolution",
                    ];
                    if global.iter().any(|g| key_is(g)) || !key_names_entry_option(key) {
                        continue;
                    }
                    return Err(err(ConfigErrorKind::OptionOutsideEntry));
                };
                if key_is("protocol") {
                    *protocol = Some(value);
                } else if key_is("path") || key_is("kernel_path") {
                    entry.kernel_path = volume_path(value).ok_or(err(ConfigErrorKind::BadPath))?;
                } else if key_is("cmdline") || key_is("kernel_cmdline") {
                    entry.cmdline = value;
                } else if key_is("module_path") {
                    let path = volume_path(value).ok_or(err(ConfigErrorKind::BadPath))?;
                    let slot = entry
                        .modules
                        .get_mut(entry.module_count)
                        .ok_or(err(ConfigErrorKind::TooManyModules))?;
                    *slot = ModuleSpec { path, cmdline: "" };
                    entry.module_count += 1;
                } else if key_is("module_cmdline") || key_is("module_string") {
                    let last = entry
                        .module_count
                        .checked_sub(1)
                        .and_then(|i| entry.modules.get_mut(i))
                        .ok_or(err(ConfigErrorKind::CmdlineWithoutModule))?;
                    last.cmdline = value;
                }
            }
        }
    }
    finish(current.take(), &mut index)
}

fn key_names_entry_option(key: &str) -> bool {
    [
        "protocol",
        "path",
        "kernel_path",
        "cmdline",
        "kernel_cmdline",
        "module_path",
        "module_cmdline",
        "module_string",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
}

/// Check the whole file and return the bootable entry numbered `choice` (1-based, as
/// Limine's `default_entry`), or the file's `default_entry`, or the first.
pub fn select_entry(text: &str, choice: Option<usize>) -> Result<BootEntry<'_>, ConfigError> {
    let wanted = match choice {
        Some(n) => n,
        None => default_entry(text)?.unwrap_or(1),
    };
    // Walk the whole file once so that a mistake anywhere is reported, then pick.
    walk(text, |_, _, _| None::<()>)?;
    let picked = walk(text, |index, entry, protocol| (index == wanted).then_some((*entry, protocol)))?;
    let (entry, protocol) = picked.ok_or(ConfigError { line: 0, kind: ConfigErrorKind::NoSuchEntry })?;
    match protocol {
        Some(p) if p.eq_ignore_ascii_case("limine") => Ok(entry),
        _ => Err(ConfigError { line: 0, kind: ConfigErrorKind::NotLimineProtocol }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{format, string::String};

    const SAMPLE: &str = "\
# Machina
timeout: 0

/Machina
    protocol: limine
    path: boot():/boot/mach-kernel
    cmdline: log=debug
    module_path: boot():/boot/bootstrap
    module_cmdline: bootstrap first
    module_path: boot():/boot/fs-server

/Machina (tests)
    protocol: limine
    kernel_path: boot():/boot/mach-kernel
    module_path: boot():/boot/kernel-tests
    module_string: kernel-tests all
";

    #[test]
    fn first_entry_is_default() {
        let e = select_entry(SAMPLE, None).unwrap();
        assert_eq!(e.name, "Machina");
        assert_eq!(e.kernel_path, "/boot/mach-kernel");
        assert_eq!(e.cmdline, "log=debug");
        assert_eq!(
            e.modules(),
            &[
                ModuleSpec { path: "/boot/bootstrap", cmdline: "bootstrap first" },
                ModuleSpec { path: "/boot/fs-server", cmdline: "" },
            ]
        );
    }

    #[test]
    fn entry_by_number_and_aliases() {
        let e = select_entry(SAMPLE, Some(2)).unwrap();
        assert_eq!(e.name, "Machina (tests)");
        assert_eq!(e.cmdline, "");
        assert_eq!(e.modules(), &[ModuleSpec { path: "/boot/kernel-tests", cmdline: "kernel-tests all" }]);
        assert_eq!(select_entry(SAMPLE, Some(3)).unwrap_err().kind, ConfigErrorKind::NoSuchEntry);
    }

    #[test]
    fn default_entry_option_is_honoured() {
        let text = format!("default_entry: 2\n{SAMPLE}");
        assert_eq!(select_entry(&text, None).unwrap().name, "Machina (tests)");
    }

    #[test]
    fn directories_and_sub_entries() {
        let text = "/Group\n//+Inner\n  protocol: limine\n  path: boot(1):/k\n";
        let e = select_entry(text, None).unwrap();
        assert_eq!(e.name, "Inner");
        assert_eq!(e.kernel_path, "/k");
    }

    #[test]
    fn mistakes_have_line_numbers() {
        let bad = "/A\n  protocol: limine\n  path: boot():/k\n  garbage line\n";
        assert_eq!(
            select_entry(bad, None).unwrap_err(),
            ConfigError { line: 4, kind: ConfigErrorKind::NotAnOption }
        );
        let orphan = "/A\n  protocol: limine\n  path: boot():/k\n  module_cmdline: x\n";
        assert_eq!(select_entry(orphan, None).unwrap_err().kind, ConfigErrorKind::CmdlineWithoutModule);
        let outside = "module_path: boot():/m\n/A\n protocol: limine\n path: boot():/k\n";
        assert_eq!(
            select_entry(outside, None).unwrap_err(),
            ConfigError { line: 1, kind: ConfigErrorKind::OptionOutsideEntry }
        );
        let relative = "/A\n protocol: limine\n path: boot():kernel\n";
        assert_eq!(select_entry(relative, None).unwrap_err().kind, ConfigErrorKind::BadPath);
        let nokernel = "/A\n protocol: limine\n";
        assert_eq!(select_entry(nokernel, None).unwrap_err().kind, ConfigErrorKind::NoKernelPath);
        let multiboot = "/A\n protocol: multiboot2\n path: boot():/k\n";
        assert_eq!(select_entry(multiboot, None).unwrap_err().kind, ConfigErrorKind::NotLimineProtocol);
        assert_eq!(select_entry("", None).unwrap_err().kind, ConfigErrorKind::NoSuchEntry);
    }

    #[test]
    fn too_many_modules() {
        let mut text = String::from("/A\nprotocol: limine\npath: boot():/k\n");
        for i in 0..=MAX_MODULES {
            text.push_str(&format!("module_path: boot():/m{i}\n"));
        }
        assert_eq!(select_entry(&text, None).unwrap_err().kind, ConfigErrorKind::TooManyModules);
    }

    #[test]
    fn volume_paths() {
        assert_eq!(volume_path("boot():/a/b"), Some("/a/b"));
        assert_eq!(volume_path("boot(2):/a"), Some("/a"));
        assert_eq!(volume_path("/plain"), Some("/plain"));
        assert_eq!(volume_path("boot():"), None);
        assert_eq!(volume_path("boot():/"), None);
        assert_eq!(volume_path("rel"), None);
    }
}
