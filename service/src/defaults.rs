//! Configurations "as with no flags", for tests and tools, without reading the
//! environment: clap's defaults stay the one source of every default, and an exported
//! `DRIFT_*` variable cannot silently change a test.

use clap::{Command, Parser};

fn without_env(cmd: Command) -> Command {
    cmd.mut_args(|a| a.env(None)).mut_subcommands(without_env)
}

/// Parses `args` (the program name first) as `T` would be on the command line, with every
/// environment fallback ignored.
pub fn parse_without_env<T: Parser>(args: &[&str]) -> Result<T, clap::Error> {
    let matches = without_env(T::command()).try_get_matches_from(args)?;
    T::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[arg(long, env = "DRIFT_SERVICE_TEST_ONLY_VALUE", default_value_t = 7)]
        value: u32,
    }

    #[test]
    fn ignores_the_environment() {
        // Set before any thread of this test binary reads the environment.
        std::env::set_var("DRIFT_SERVICE_TEST_ONLY_VALUE", "9");
        assert_eq!(Cli::parse_from(["t"]).value, 9);
        assert_eq!(parse_without_env::<Cli>(&["t"]).unwrap().value, 7);
        assert_eq!(
            parse_without_env::<Cli>(&["t", "--value", "3"])
                .unwrap()
                .value,
            3
        );
    }
}
