//! Builds the web UI (`web/`, a SvelteKit app) into `web/build`, which `src/api/ui.rs`
//! embeds in the binary, so a plain `cargo build` or `cargo run` gives a daemon that
//! serves its UI.
//!
//! npm runs only when `web/build` is missing or older than any of the UI's sources; its
//! dependencies are installed (`npm ci`) only when `node_modules` is missing or older than
//! the lockfile. `DW_SKIP_WEB_BUILD=1` builds without touching the UI (the daemon then
//! answers UI paths with a page saying how to build it).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

/// What the UI is built from, relative to `web/`.
const INPUTS: &[&str] = &[
    "src",
    "static",
    "package.json",
    "package-lock.json",
    "svelte.config.js",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let web =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?).join("web");
    println!("cargo:rerun-if-env-changed=DW_SKIP_WEB_BUILD");
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    // web/build itself is not watched: it is written while this script runs, so Cargo
    // would take it for a change and run the script (and rebuild the crate) once more.
    // After deleting it, touch web/package.json to have it rebuilt.

    if std::env::var("DW_SKIP_WEB_BUILD").is_ok_and(|v| v == "1") {
        println!("cargo:warning=DW_SKIP_WEB_BUILD=1: the web UI is not built");
        return Ok(());
    }
    if !web.join("package.json").exists() {
        return Err(format!(
            "{} is missing: the UI sources are part of the repository",
            web.display()
        ));
    }

    let built = modified(&web.join("build").join("index.html"));
    let newest_input = INPUTS.iter().filter_map(|i| newest(&web.join(i))).max();
    let stale = match (built, newest_input) {
        (None, _) => true,
        (Some(built), Some(input)) => input > built,
        (Some(_), None) => false,
    };
    if !stale {
        return Ok(());
    }

    let npm = find_npm()?;
    let lock = web.join("package-lock.json");
    let installed = modified(&web.join("node_modules").join(".package-lock.json"));
    let install_needed = match (installed, modified(&lock)) {
        (None, _) => true,
        (Some(installed), Some(lock)) => lock > installed,
        (Some(_), None) => false,
    };
    if install_needed {
        let install = if lock.exists() { "ci" } else { "install" };
        npm_run(&npm, &web, &[install, "--no-audit", "--no-fund"])?;
    }
    npm_run(&npm, &web, &["run", "build"])?;
    if !web.join("build").join("index.html").exists() {
        return Err("`npm run build` finished but web/build/index.html is missing".into());
    }
    Ok(())
}

/// `npm` on the PATH, with Node behind it; a clear word when either is missing.
fn find_npm() -> Result<String, String> {
    let missing = "the web UI needs Node.js 20 or newer with npm to build: install Node 20 \
                   or newer (Debian 12's own nodejs is too old), or set DW_SKIP_WEB_BUILD=1 \
                   to build the daemon without its UI";
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let major = version
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if major.is_some_and(|m| m < 20) {
                return Err(format!("found Node {}; {missing}", version.trim()));
            }
        }
        _ => return Err(format!("`node` was not found; {missing}")),
    }
    match Command::new("npm").arg("--version").output() {
        Ok(out) if out.status.success() => Ok("npm".into()),
        _ => Err(format!("`npm` was not found; {missing}")),
    }
}

/// Runs npm in `web/`; its output is kept out of Cargo's (stdout lines are build-script
/// instructions) and shown only when it fails.
fn npm_run(npm: &str, web: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new(npm)
        .args(args)
        .current_dir(web)
        .env("NO_UPDATE_NOTIFIER", "1")
        .output()
        .map_err(|e| format!("cannot run `npm {}`: {e}", args.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`npm {}` in {} failed ({}):\n{}\n{}",
        args.join(" "),
        web.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of anything under a folder.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path).ok()?;
    children
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .chain(own)
        .max()
}
