//! The process around the app: the async runtime, logs, and how a failure is reported.
#![cfg_attr(not(feature = "aws"), allow(dead_code))]

use std::process::ExitCode;

pub(crate) fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&format!("cannot start the async runtime: {e}")))
}

pub(crate) fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Human-readable logs on stderr for the local gateway, filtered by `RUST_LOG` directives
/// (default `info`).
#[cfg(feature = "local")]
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Structured JSON logs for CloudWatch: one object a line, fields flattened. Request
/// bodies and tokens are never logged. The level is `RUST_LOG` or Lambda's
/// `AWS_LAMBDA_LOG_LEVEL` (`error`, `warn`, `info`, `debug`, `trace`; default `info`): a
/// level, not `EnvFilter` directives, so the artifact carries no regex engine.
pub(crate) fn init_json_logs() {
    let filter = lambda_log_level(|name| std::env::var(name).ok());
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_max_level(filter)
        .try_init();
}

/// The Lambda log level from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`.
fn lambda_log_level(
    var: impl Fn(&str) -> Option<String>,
) -> tracing_subscriber::filter::LevelFilter {
    ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"]
        .iter()
        .find_map(|name| var(name)?.trim().parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::lambda_log_level;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn the_lambda_log_level_comes_from_rust_log_then_lambda_then_info() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(lambda_log_level(env(&[])), LevelFilter::INFO);
        assert_eq!(
            lambda_log_level(env(&[("RUST_LOG", "debug")])),
            LevelFilter::DEBUG
        );
        assert_eq!(
            lambda_log_level(env(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")])),
            LevelFilter::WARN
        );
        // Directives are not a level: the next source decides.
        assert_eq!(
            lambda_log_level(env(&[
                ("RUST_LOG", "switchboard=debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "error")
            ])),
            LevelFilter::ERROR
        );
    }
}
