//! `rostersync sandbox`: serves the provider sandbox on 127.0.0.1 until
//! interrupted, printing what each school's connections need.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use rostersync_sandbox::{SandboxConfig, SchoolEndpoints, Size};

#[derive(Args)]
pub struct SandboxArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8480)]
    port: u16,
    #[arg(long, default_value_t = 2)]
    schools: usize,
    #[arg(long, default_value_t = 120)]
    pupils: usize,
    /// The same seed always generates the same schools.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The endpoints and credentials as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let config = SandboxConfig {
        seed: args.seed,
        size: Size {
            schools: args.schools,
            pupils_per_school: args.pupils,
        },
        bind: SocketAddr::from(([127, 0, 0, 1], args.port)),
    };
    let json = args.json;
    rostersync_sandbox::serve(config, |schools| print_schools(schools, json)).await?;
    Ok(ExitCode::SUCCESS)
}

fn print_schools(schools: &[SchoolEndpoints], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(schools).expect("endpoints serialise")
        );
        return;
    }
    for school in schools {
        println!("school {}: {}", school.index, school.name);
        for (provider, url) in &school.base_urls {
            println!("  {provider:?}: {url}");
        }
        let c = &school.credentials;
        println!(
            "  Wonde school id {}, token {}",
            c.wonde_school_id, c.wonde_token
        );
        println!("  Clever token {}", c.clever_token);
        println!(
            "  Arbor user {} / password {}",
            c.arbor_user, c.arbor_password
        );
        println!(
            "  Xporter estab {}, relying party {}, secret {}",
            c.xporter_estab, c.xporter_relying_party, c.xporter_secret
        );
        println!("  Scholarpack token {}", c.scholarpack_token);
    }
    println!("Serving until interrupted (Ctrl-C).");
}
