//! Planning a generated 1,000-service release with random dependencies (each service on
//! up to 5 earlier ones, no deployment_order so the stages are derived): parse, validate
//! and plan, best and median of 20 runs. Goal: ≤ 50 ms.
//!
//! `cargo bench -p release-orchestrator --bench plan` — prints figures, asserts nothing.

use std::{fmt::Write as _, time::Instant};

use release_orchestrator::{plan::plan, release::parse, validate::validate};

const SERVICES: usize = 1_000;
const RUNS: usize = 20;

/// A small deterministic generator (xorshift), so every run plans the same release.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % bound as u64).unwrap_or(0)
    }
}

fn generated_release() -> String {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut text =
        String::from("release:\n  version: \"1.0.0\"\n  name: \"Generated\"\nservices:\n");
    for index in 0..SERVICES {
        let _ = writeln!(
            text,
            "  - name: svc-{index:04}\n    version: \"1.{}.0\"",
            index % 7
        );
        if index > 0 {
            let count = random.below(6).min(index);
            if count > 0 {
                text.push_str("    dependencies:\n");
                let mut chosen = Vec::new();
                for _ in 0..count {
                    let target = random.below(index);
                    if !chosen.contains(&target) {
                        chosen.push(target);
                        let _ = writeln!(text, "      - svc-{target:04}: \"1\"");
                    }
                }
            }
        }
    }
    text
}

fn main() {
    let text = generated_release();
    let mut timings = Vec::with_capacity(RUNS);
    let mut stages = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let (release, problems) = parse(&text);
        let problems = problems.len() + validate(&release, None).len();
        let planned = plan(&release, "bench", &Default::default(), None);
        timings.push(started.elapsed());
        assert_eq!(problems, 0, "the generated release is valid");
        stages = planned.stages.len();
    }
    timings.sort();
    println!(
        "plan of {SERVICES} services ({} KiB of YAML, {stages} derived stages): best {:.1} ms, median {:.1} ms over {RUNS} runs (goal ≤ 50 ms)",
        text.len() / 1024,
        timings[0].as_secs_f64() * 1e3,
        timings[RUNS / 2].as_secs_f64() * 1e3
    );
}
