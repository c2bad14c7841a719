fn main() -> std::process::ExitCode {
    tjid_intake::cli::main()
}
