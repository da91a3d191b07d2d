//! `logitscope rpc-server`: this host as a worker for models split across hosts (ggml's RPC
//! server on the CPU), the same binary as the client.

use std::process::ExitCode;

use super::fatal::Fatal;
use crate::model::rpc::{serve, ServeOptions};

/// llama.cpp's own warning: the protocol has no authentication.
const WARNING: &str = "\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
WARNING: the RPC protocol has no authentication and no encryption. Anyone who can
         reach this port can allocate this host's memory and run computations on
         it. Never expose it beyond a network you trust.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";

pub fn run(options: &ServeOptions) -> Result<ExitCode, Fatal> {
    eprintln!("{WARNING}");
    if options.host != "127.0.0.1" {
        eprintln!(
            "logitscope: rpc-server: listening on {} (not only this host): make sure only \
             trusted machines can reach port {}",
            options.host, options.port
        );
    }
    eprintln!(
        "logitscope: rpc-server on {}:{} with {} threads{}; clients connect with \
         --rpc <this host's address>:{}; Ctrl-C stops it",
        options.host,
        options.port,
        options.threads,
        options
            .cache
            .as_ref()
            .map(|c| format!(", tensor cache {}", c.display()))
            .unwrap_or_default(),
        options.port
    );
    serve(options).map_err(|e| Fatal::other(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
