//! The failover benchmark's figures: what one round measured, and the table that puts
//! both setups' p50, p95 and max side by side, one row per figure.

/// One round: a kill of the primary's Redis, the failover, the restart, until settled.
/// Times in µs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    /// From the kill to the first Sentinel's `+switch-master`.
    pub(crate) kill_to_switch: Option<i64>,
    /// From the kill to the promoted replica's `MASTER MODE enabled` (Sentinel's pace).
    pub(crate) kill_to_master: Option<i64>,
    /// From that to the first write it acked (the write port, HAProxy's check).
    pub(crate) master_to_write: Option<i64>,
    /// The last acked write before the kill to the first acked by the new primary.
    pub(crate) write_gap: Option<i64>,
    /// The first `+switch-master` to the first write acked by the new primary (negative:
    /// the write came first).
    pub(crate) switch_to_write: Option<i64>,
    /// The longest stretch without an answered read.
    pub(crate) read_gap: i64,
    pub(crate) failed_reads: usize,
    /// Of those, the ones Sentinel's `CLIENT KILL` at the promotion closed.
    pub(crate) failed_at_promotion: usize,
    pub(crate) lost: usize,
    pub(crate) non_primary_acks: usize,
    pub(crate) stale_reads: usize,
    /// For scale: writes acked and reads made in the round.
    pub(crate) acked: usize,
    pub(crate) reads: usize,
}

const ROWS: usize = 11;

impl Figures {
    /// The table's rows for this round: the label, and the value in ms or a count.
    fn rows(&self) -> [(&'static str, Option<f64>); ROWS] {
        let ms = |t: Option<i64>| t.map(|us| us as f64 / 1000.0);
        let n = |c: usize| Some(c as f64);
        [
            ("kill -> first +switch-master (ms)", ms(self.kill_to_switch)),
            (
                "kill -> promoted replica's MASTER MODE (ms)",
                ms(self.kill_to_master),
            ),
            ("MASTER MODE -> first write (ms)", ms(self.master_to_write)),
            ("total write gap (ms)", ms(self.write_gap)),
            (
                "first +switch-master -> first write (ms)",
                ms(self.switch_to_write),
            ),
            (
                "longest time without a read answered (ms)",
                ms(Some(self.read_gap)),
            ),
            ("failed reads", n(self.failed_reads)),
            (
                "... of which closed by Sentinel's CLIENT KILL at the promotion",
                n(self.failed_at_promotion),
            ),
            ("acknowledged writes lost", n(self.lost)),
            (
                "writes acknowledged by a non-primary",
                n(self.non_primary_acks),
            ),
            (
                "stale reads from the returning old primary",
                n(self.stale_reads),
            ),
        ]
    }
}

/// The p-th percentile (0-100) of `v`, linear between the closest ranks (numpy's
/// default): with 10 rounds p50 is the mean of the 5th and 6th, p95 lies between the 9th
/// and the 10th.
pub(crate) fn percentile(v: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = v.to_vec();
    v.sort_by(f64::total_cmp);
    let last = v.len().checked_sub(1)?;
    let rank = p / 100.0 * last as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (rank - lo as f64))
}

fn cell(x: Option<f64>) -> String {
    match x {
        None => "-".to_string(),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

/// p50, p95 and max of row `i` over one setup's rounds (rounds without the figure, e.g.
/// writes that never resumed, are left out and counted).
fn stats(rounds: &[Vec<Option<f64>>], i: usize) -> [String; 3] {
    let v: Vec<f64> = rounds.iter().filter_map(|r| r[i]).collect();
    let missing = rounds.len() - v.len();
    let max = v.iter().copied().reduce(f64::max);
    let mut out = [
        cell(percentile(&v, 50.0)),
        cell(percentile(&v, 95.0)),
        cell(max),
    ];
    if missing > 0 {
        out[2] = format!("{} ({missing} n/a)", out[2]);
    }
    out
}

/// Two setups side by side, as Markdown (it goes into the README as printed): per row
/// `labels[i]`, each setup's p50, p95 and max over its rounds (each round a row of
/// figures, `None` where it had none).
pub(crate) fn print_columns(
    what: &str,
    labels: &[&str],
    (a_name, a): (&str, &[Vec<Option<f64>>]),
    (b_name, b): (&str, &[Vec<Option<f64>>]),
) {
    println!(
        "\n| {what} ({} + {} rounds) | {a_name} p50 | {a_name} p95 | {a_name} max | {b_name} p50 | {b_name} p95 | {b_name} max |",
        a.len(),
        b.len()
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, label) in labels.iter().enumerate() {
        let [x, y, z] = stats(a, i);
        let [u, v, w] = stats(b, i);
        println!("| {label} | {x} | {y} | {z} | {u} | {v} | {w} |");
    }
}

/// The failover table.
pub(crate) fn print_table(ours: &[Figures], alone: &[Figures]) {
    let labels = Figures::default().rows().map(|(label, _)| label);
    let column = |v: &[Figures]| -> Vec<Vec<Option<f64>>> {
        v.iter()
            .map(|f| f.rows().iter().map(|(_, x)| *x).collect())
            .collect()
    };
    print_columns(
        "per failover",
        &labels,
        ("ours", &column(ours)),
        ("HAProxy alone", &column(alone)),
    );
    let total = |v: &[Figures], f: fn(&Figures) -> usize| v.iter().map(f).sum::<usize>();
    println!(
        "\nin all: ours {} writes acked, {} reads; HAProxy alone {} writes acked, {} reads",
        total(ours, |f| f.acked),
        total(ours, |f| f.reads),
        total(alone, |f| f.acked),
        total(alone, |f| f.reads)
    );
}
