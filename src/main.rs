//! The `compose-shard` binary: parse the command line, run, map the outcome to an exit code.

fn main() {
    std::process::exit(compose_shard::main_entry());
}
