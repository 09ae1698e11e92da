//! Diagnostics at the edge: error chains, `hint:` lines and documented exit codes.
//!
//! Exit codes (README "Exit codes"): 0 success; 1 a failure (a build step failed, bad input, the
//! store, files); 2 usage errors (clap); 3 a feature that is not implemented yet; 4 the Dockerfile
//! is invalid (syntax, an instruction, a stage reference, an expansion); 5 a build could not find or
//! pull an image or one of its layers.

use std::process::ExitCode;

/// An error that a command has already rendered for people (e.g. a Dockerfile excerpt); carries the
/// exit code to use.
#[derive(Debug)]
pub struct Rendered {
    pub message: String,
    pub code: u8,
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

/// The exit code of an invalid Dockerfile.
pub const DOCKERFILE: u8 = 4;
/// The exit code of an image that could not be found or pulled.
pub const IMAGE: u8 = 5;
/// A registry could not be reached.
pub const NETWORK: u8 = 6;
/// The store or another file could not be read or written.
pub const STORAGE: u8 = 7;

/// The exit code of a failed build.
pub fn build_code(kind: lighter_engine::ErrorKind) -> u8 {
    match kind {
        lighter_engine::ErrorKind::Dockerfile => DOCKERFILE,
        lighter_engine::ErrorKind::Image => IMAGE,
        lighter_engine::ErrorKind::Network => NETWORK,
        lighter_engine::ErrorKind::Store | lighter_engine::ErrorKind::Io => STORAGE,
        lighter_engine::ErrorKind::NotImplemented => 3,
        lighter_engine::ErrorKind::Step(_) | lighter_engine::ErrorKind::Other => 1,
    }
}

/// A verb or option that a later piece of work fills in.
#[derive(Debug)]
pub struct NotImplemented(pub &'static str);

impl std::fmt::Display for NotImplemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not implemented yet", self.0)
    }
}

impl std::error::Error for NotImplemented {}

/// Print an error chain to stderr and choose the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(r) = err.downcast_ref::<Rendered>() {
        eprintln!("{}", shorten(r.message.trim_end()));
        return ExitCode::from(r.code);
    }
    eprintln!("error: {}", shorten(&err.to_string()));
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {}", shorten(&cause.to_string()));
    }
    if err.downcast_ref::<NotImplemented>().is_some() {
        return ExitCode::from(3);
    }
    ExitCode::from(1)
}

/// Longest line an error prints whole; hostile input (a 100 KB path in a layer, a 60 KB Dockerfile
/// line) would otherwise fill the terminal. Longer lines keep their start and end.
const MAX_LINE: usize = 2000;

/// `text` with every line longer than [`MAX_LINE`] characters cut in the middle.
fn shorten(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE * 4));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let n = line.chars().count();
        if n <= MAX_LINE {
            out.push_str(line);
            continue;
        }
        let head: String = line.chars().take(MAX_LINE - 500).collect();
        let tail: String = line.chars().skip(n - 400).collect();
        out.push_str(&format!(
            "{head} …({} characters left out)… {tail}",
            n - head.chars().count() - 400
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lines_are_cut_in_the_middle_and_short_ones_kept() {
        assert_eq!(super::shorten("a\nb"), "a\nb");
        let long = format!("start{}end", "é".repeat(100_000));
        let s = super::shorten(&format!("x\n{long}\ny"));
        assert!(s.starts_with("x\nstart"), "{s:.20}");
        assert!(s.ends_with("end\ny"));
        assert!(s.contains("(98108 characters left out)"), "{}", s.len());
        assert!(s.chars().count() < 2100);
    }
}
