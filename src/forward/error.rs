//! The ways one try at an upstream fails, each counted under its own label
//! of `amldns_upstream_errors_total`.

use hickory_proto::op::ResponseCode;
use prometheus::IntCounter;

use super::relevance::CnameLoop;
use crate::resolve;
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
    /// An rcode that is no answer (SERVFAIL, REFUSED, FORMERR…), as the
    /// upstream gave it.
    #[error("answered {0}")]
    Rcode(ResponseCode),
    /// An answer that is not passed on.
    #[error("unusable answer: {0}")]
    Unusable(#[from] CnameLoop),
}

impl UpstreamError {
    /// The kind it is counted as. An unusable answer counts as `servfail`,
    /// which is what the client is told; FORMERR and NOTIMP count as the
    /// upstream said them (`rcode`), not as what the client is told.
    pub(super) fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::Timeout => ErrorKind::Timeout,
            UpstreamError::Network(_) => ErrorKind::Network,
            UpstreamError::Rcode(ResponseCode::ServFail) | UpstreamError::Unusable(_) => {
                ErrorKind::Servfail
            }
            UpstreamError::Rcode(ResponseCode::Refused) => ErrorKind::Refused,
            UpstreamError::Rcode(_) => ErrorKind::Rcode,
        }
    }

    /// The rcode a client is told if no other upstream does better
    /// ([`resolve::told_for_upstream_failure`]); `None` when there was no
    /// reply. An answer that is not passed on is a SERVFAIL.
    pub(super) fn rcode(&self) -> Option<ResponseCode> {
        match self {
            UpstreamError::Timeout | UpstreamError::Network(_) => None,
            UpstreamError::Unusable(_) => Some(ResponseCode::ServFail),
            UpstreamError::Rcode(rcode) => Some(<ResponseCode as From<u16>>::from(
                resolve::told_for_upstream_failure(u16::from(*rcode)),
            )),
        }
    }
}

/// The `error` label's bounded set: the kinds an [`UpstreamError`] is
/// counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrorKind {
    Timeout,
    Network,
    Servfail,
    Refused,
    Rcode,
}

impl ErrorKind {
    /// Every kind, each at the index of its discriminant.
    pub(super) const ALL: [ErrorKind; 5] = [
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::Servfail,
        ErrorKind::Refused,
        ErrorKind::Rcode,
    ];

    /// Its value of the `error` label.
    pub(super) fn label(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Servfail => "servfail",
            ErrorKind::Refused => "refused",
            ErrorKind::Rcode => "rcode",
        }
    }
}

/// One upstream's error counters, one per kind, each there (at zero) from
/// when the upstream is configured.
pub(super) struct ErrorCounters([IntCounter; ErrorKind::ALL.len()]);

impl ErrorCounters {
    /// The counters `of` gives for each label.
    pub(super) fn new(of: impl Fn(&'static str) -> IntCounter) -> Self {
        ErrorCounters(ErrorKind::ALL.map(|kind| of(kind.label())))
    }

    pub(super) fn count(&self, error: &UpstreamError) {
        self.0[error.kind() as usize].inc();
    }

    /// Errors of every kind.
    pub(super) fn total(&self) -> u64 {
        self.0.iter().map(IntCounter::get).sum()
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
                UpstreamError::Unusable(CnameLoop),
                "servfail",
                Some(ServFail),
            ),
            (UpstreamError::Rcode(Refused), "refused", Some(Refused)),
            (UpstreamError::Rcode(FormErr), "rcode", Some(ServFail)),
            (UpstreamError::Rcode(NotImp), "rcode", Some(ServFail)),
            (UpstreamError::Rcode(NXDomain), "rcode", Some(NXDomain)),
        ];
        for (error, label, rcode) in &cases {
            assert_eq!(error.kind().label(), *label, "{error}");
            assert_eq!(error.rcode(), *rcode, "{error}");
        }
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?} out of place");
            assert!(cases.iter().any(|(e, _, _)| e.kind() == kind), "{kind:?}");
        }
        let counters = ErrorCounters::new(|label| IntCounter::new("e", label).unwrap());
        for (error, _, _) in &cases {
            counters.count(error);
        }
        assert_eq!(counters.total(), cases.len() as u64, "every one counted");
        assert_eq!(counters.0[ErrorKind::Servfail as usize].get(), 2);
    }
}
