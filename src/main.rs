fn main() -> std::process::ExitCode {
    logitscope::cli::run()
}
