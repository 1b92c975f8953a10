use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sofiia::cli::Cli::parse();
    sofiia::init_tracing();
    match sofiia::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
