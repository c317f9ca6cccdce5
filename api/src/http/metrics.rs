//! Request counts and latency histograms per route, rendered in Prometheus text format
//! for `GET /v1/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Request counts and latency histograms per route, in Prometheus text format.
#[derive(Default)]
pub(super) struct Metrics {
    inner: Mutex<HashMap<(&'static str, &'static str), RouteStats>>,
}

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct RouteStats {
    by_status: HashMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub(super) fn record(
        &self,
        path: &'static str,
        method: &'static str,
        status: u16,
        took: Duration,
    ) {
        let s = took.as_secs_f64();
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = m.entry((method, path)).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (b, le) in r.buckets.iter_mut().zip(BUCKETS) {
            if s <= le {
                *b += 1;
            }
        }
        r.count += 1;
        r.sum += s;
    }

    pub(super) fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<_> = m.keys().copied().collect();
        keys.sort();
        let mut out = String::from("# HELP motif_http_requests_total Requests answered, by route and status\n# TYPE motif_http_requests_total counter\n");
        for k in &keys {
            let mut st: Vec<_> = m[k].by_status.iter().collect();
            st.sort();
            for (status, n) in st {
                out.push_str(&format!(
                    "motif_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                    k.0, k.1, status, n
                ));
            }
        }
        out.push_str("# HELP motif_http_request_duration_seconds Time to answer, by route\n# TYPE motif_http_request_duration_seconds histogram\n");
        for k in &keys {
            let r = &m[k];
            let l = format!("method=\"{}\",route=\"{}\"", k.0, k.1);
            for (b, le) in r.buckets.iter().zip(BUCKETS) {
                out.push_str(&format!(
                    "motif_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {b}\n"
                ));
            }
            out.push_str(&format!(
                "motif_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}\n",
                r.count
            ));
            out.push_str(&format!(
                "motif_http_request_duration_seconds_sum{{{l}}} {}\n",
                r.sum
            ));
            out.push_str(&format!(
                "motif_http_request_duration_seconds_count{{{l}}} {}\n",
                r.count
            ));
        }
        out
    }
}
