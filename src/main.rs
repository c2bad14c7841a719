// mimalloc: the intake allocates many short-lived buffers per email on several threads; glibc's
// malloc spent ~8 % of the benchmark's CPU in allocation and consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tjid_intake::app::cli::main()
}
