//! Linear scan against token trie: the time to find every pattern that
//! matches one subject, among N subscribed patterns.
//!
//! The patterns are generated with a fixed seed from a small vocabulary of
//! subjects shaped `service.entity.event.version`: 70% are literal, 20% have
//! one `*` and 10% end with `>` after one or two literal tokens. Each lookup
//! takes the next of 256 generated subjects, so no single path stays in the
//! cache. Run it with
//!
//! ```sh
//! cargo bench -p task08_wildcards --features reference --bench matching
//! ```
//!
//! The indexes belong to the reference, so with a mutant selected as well,
//! as under `--all-features`, this benchmark only prints how to run it.

#[cfg(workbook_impl = "reference")]
mod lookup {
    use std::hint::black_box;
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion};
    use task08_wildcards::index::{LinearIndex, Matcher, TrieIndex};

    /// Pattern counts to measure; 1 and 3 locate a crossover below 10.
    const SIZES: [usize; 7] = [1, 3, 10, 100, 1_000, 10_000, 100_000];

    const SERVICES: [&str; 12] = [
        "orders", "payments", "users", "invoices", "shipping", "stock", "search", "mail", "audit",
        "billing", "reviews", "carts",
    ];
    const ENTITY_COUNT: u64 = 40;
    const EVENTS: [&str; 8] = [
        "created", "updated", "deleted", "failed", "retried", "paid", "sent", "read",
    ];
    const VERSIONS: [&str; 3] = ["v1", "v2", "v3"];

    /// SplitMix64: fixed seed, same patterns on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    fn subject_tokens(rng: &mut Rng) -> Vec<String> {
        vec![
            rng.pick(&SERVICES).to_owned(),
            format!("e{}", rng.next() % ENTITY_COUNT),
            rng.pick(&EVENTS).to_owned(),
            rng.pick(&VERSIONS).to_owned(),
        ]
    }

    fn generate_patterns(count: usize, rng: &mut Rng) -> Vec<String> {
        (0..count)
            .map(|_| {
                let mut tokens = subject_tokens(rng);
                match rng.next() % 10 {
                    // One wildcard at one of the four positions.
                    0 | 1 => tokens[(rng.next() % 4) as usize] = "*".to_owned(),
                    // Everything below one or two literal tokens.
                    2 => {
                        tokens.truncate(1 + (rng.next() % 2) as usize);
                        tokens.push(">".to_owned());
                    }
                    _ => {}
                }
                tokens.join(".")
            })
            .collect()
    }

    fn build<M: Matcher + Default>(patterns: &[String]) -> M {
        let mut index = M::default();
        for (id, pattern) in (0u64..).zip(patterns) {
            index
                .insert(pattern, id)
                .expect("generated patterns are valid");
        }
        index
    }

    fn measure(criterion: &mut Criterion) {
        let mut rng = Rng(0x8a7c_4e11);
        let subjects: Vec<String> = (0..256)
            .map(|_| subject_tokens(&mut rng).join("."))
            .collect();

        let mut group = criterion.benchmark_group("find_matches");
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for size in SIZES {
            let patterns = generate_patterns(size, &mut rng);
            let linear: LinearIndex = build(&patterns);
            let trie: TrieIndex = build(&patterns);
            group.bench_with_input(BenchmarkId::new("linear", size), &linear, |b, index| {
                lookup(b, index, &subjects)
            });
            group.bench_with_input(BenchmarkId::new("trie", size), &trie, |b, index| {
                lookup(b, index, &subjects)
            });
        }
        group.finish();
    }

    fn lookup(bencher: &mut criterion::Bencher<'_>, index: &impl Matcher, subjects: &[String]) {
        let mut ids = Vec::new();
        let mut next = 0;
        bencher.iter(|| {
            ids.clear();
            let subject = &subjects[next % subjects.len()];
            next += 1;
            index.matching(black_box(subject), &mut ids);
            ids.len()
        });
    }

    criterion::criterion_group!(benches, measure);
}

#[cfg(workbook_impl = "reference")]
criterion::criterion_main!(lookup::benches);

#[cfg(not(workbook_impl = "reference"))]
fn main() {
    eprintln!(
        "the matching benchmark measures the reference's indexes; run it with \
         `--features reference` and no mutant feature"
    );
}
