//! How each subsystem declares its series: one call per series with its
//! name, help and label names, and label sets that take fixed values as
//! enums whose label values are written once.

use prometheus::core::Collector;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Buckets from 50 µs (a local answer) to the 2.5 s query deadline.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// Adds series to one registry. A name or label set the client library
/// refuses, or a name registered twice, is a bug in the declarations, found
/// by any test that builds `Metrics`: hence the `expect`s.
pub(super) struct Register<'a>(pub(super) &'a Registry);

impl Register<'_> {
    fn add<C: Collector + Clone + 'static>(&self, series: C) -> C {
        self.0
            .register(Box::new(series.clone()))
            .expect("registered once");
        series
    }

    pub(super) fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid metric"))
    }

    pub(super) fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    pub(super) fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }

    /// A gauge of fractional values (Unix times).
    pub(super) fn float_gauge(&self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help).expect("valid metric"))
    }

    pub(super) fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    /// A latency histogram, in [`LATENCY_BUCKETS`].
    pub(super) fn histogram_vec(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        self.add(HistogramVec::new(opts, labels).expect("valid metric"))
    }

    /// A counter with one label that takes the values of `all`: each series
    /// exists, at 0, from the start, so that the first of any value is an
    /// increase that `increase()` and alerts can see. The counter of a value
    /// is at the index of its discriminant, as [`label_set!`] lays them out.
    pub(super) fn counter_each<T: Copy, const N: usize>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        all: [T; N],
        value: impl Fn(T) -> &'static str,
    ) -> [IntCounter; N] {
        let vec = self.counter_vec(name, help, &[label]);
        all.map(|v| vec.with_label_values(&[value(v)]))
    }
}

/// An enum for a label that takes fixed values, each variant with its value
/// written beside it: `ALL` lists the variants in declaration order, so a
/// variant's discriminant is its index there, and `as_str` gives its value.
macro_rules! label_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, each at the index of its discriminant.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            /// Its value of the label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $value, )+
                }
            }
        }
    };
}
pub(super) use label_set;

#[cfg(test)]
mod tests {
    label_set! {
        /// A set for the test.
        pub enum Color {
            Red => "red",
            Green => "green",
            Blue => "blue",
        }
    }

    #[test]
    fn a_label_sets_values_are_at_their_discriminants() {
        for (i, c) in Color::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c:?}");
        }
        assert_eq!(Color::Green.as_str(), "green");
    }
}
