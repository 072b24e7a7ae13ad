//! The ways one try at an upstream fails, each counted under its own label
//! of `amldns_upstream_errors_total`.

use hickory_proto::op::ResponseCode;
use prometheus::IntCounter;

use super::relevance::CnameLoop;
use crate::upstream::ExchangeError;

/// How one upstream failed one try at a question.
#[derive(Debug, thiserror::Error)]
pub(super) enum UpstreamError {
    /// No reply within the try's time.
    #[error("no reply in time")]
    Timeout,
    /// The exchange itself failed (a socket error, a bad TCP reply).
    #[error(transparent)]
    Network(#[from] ExchangeError),
    /// An rcode that is no answer (SERVFAIL, REFUSED, FORMERR…).
    #[error("answered {0}")]
    Rcode(ResponseCode),
    /// An answer not passed on.
    #[error("answer refused: {0}")]
    Refused(#[from] CnameLoop),
}

impl UpstreamError {
    /// Every value of [`Self::label`]: the `error` label's bounded set.
    pub(super) const LABELS: [&'static str; 5] =
        ["timeout", "network", "servfail", "refused", "rcode"];

    /// The `error` label it is counted under. A refused answer counts as
    /// `servfail`, which is what the client is told.
    pub(super) fn label(&self) -> &'static str {
        match self {
            UpstreamError::Timeout => "timeout",
            UpstreamError::Network(_) => "network",
            UpstreamError::Rcode(ResponseCode::ServFail) | UpstreamError::Refused(_) => "servfail",
            UpstreamError::Rcode(ResponseCode::Refused) => "refused",
            UpstreamError::Rcode(_) => "rcode",
        }
    }

    /// The rcode a client is told if no other upstream does better; `None`
    /// when there was no reply. The query was valid: the upstream failed
    /// it, not the client, so FORMERR and NOTIMP become SERVFAIL.
    pub(super) fn rcode(&self) -> Option<ResponseCode> {
        match self {
            UpstreamError::Timeout | UpstreamError::Network(_) => None,
            UpstreamError::Rcode(ResponseCode::FormErr | ResponseCode::NotImp)
            | UpstreamError::Refused(_) => Some(ResponseCode::ServFail),
            UpstreamError::Rcode(other) => Some(*other),
        }
    }
}

/// One upstream's error counters, one per label, each there (at zero)
/// from when the upstream is configured.
pub(super) struct ErrorCounters([(&'static str, IntCounter); 5]);

impl ErrorCounters {
    /// The counters `of` gives for each label.
    pub(super) fn new(of: impl Fn(&'static str) -> IntCounter) -> Self {
        ErrorCounters(UpstreamError::LABELS.map(|label| (label, of(label))))
    }

    pub(super) fn count(&self, error: &UpstreamError) {
        let label = error.label();
        if let Some((_, counter)) = self.0.iter().find(|(l, _)| *l == label) {
            counter.inc();
        }
    }

    /// Errors of every kind.
    pub(super) fn total(&self) -> u64 {
        self.0.iter().map(|(_, counter)| counter.get()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each failure has its label, and each label a failure: the series
    /// and the rcode passed on are those of before the enum.
    #[test]
    fn each_failure_has_its_label_and_rcode() {
        use ResponseCode::{FormErr, NXDomain, NotImp, Refused, ServFail};
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let cases = [
            (UpstreamError::Timeout, "timeout", None),
            (
                UpstreamError::from(ExchangeError::from(io())),
                "network",
                None,
            ),
            (UpstreamError::Rcode(ServFail), "servfail", Some(ServFail)),
            (
                UpstreamError::Refused(CnameLoop),
                "servfail",
                Some(ServFail),
            ),
            (UpstreamError::Rcode(Refused), "refused", Some(Refused)),
            (UpstreamError::Rcode(FormErr), "rcode", Some(ServFail)),
            (UpstreamError::Rcode(NotImp), "rcode", Some(ServFail)),
            (UpstreamError::Rcode(NXDomain), "rcode", Some(NXDomain)),
        ];
        for (error, label, rcode) in &cases {
            assert_eq!(error.label(), *label, "{error}");
            assert_eq!(error.rcode(), *rcode, "{error}");
        }
        for label in UpstreamError::LABELS {
            assert!(cases.iter().any(|(e, _, _)| e.label() == label), "{label}");
        }
        let counters = ErrorCounters::new(|label| IntCounter::new("e", label).unwrap());
        for (error, _, _) in &cases {
            counters.count(error);
        }
        assert_eq!(counters.total(), cases.len() as u64, "every one counted");
    }
}
