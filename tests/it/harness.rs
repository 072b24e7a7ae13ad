//! The test harness keeps its promises: every test config names loopback
//! upstreams and gives a local name, so no test can reach
//! 168.63.129.16 by leaving `[upstream]` out.

use crate::common::*;

#[tokio::test]
#[should_panic(expected = "upstream 168.63.129.16:53 is not on loopback")]
async fn a_config_without_upstreams_is_refused() {
    start(PROBE).await;
}

#[tokio::test]
#[should_panic(expected = "upstream 10.0.0.9:53 is not on loopback")]
async fn an_upstream_off_this_host_is_refused() {
    let up = StandIn::zone().await;
    let text = TestConfig {
        upstreams: &[up.addr, "10.0.0.9:53".parse().unwrap()],
        ..TestConfig::default()
    }
    .text();
    start(&text).await;
}

/// A config built with nothing local gets the probe name, and only then.
#[tokio::test]
async fn built_configs_answer_something_locally() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, "")).await;
    let r = udp_query(
        srv.addr,
        "probe.privatelink.blob.core.windows.net",
        hickory_proto::rr::RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), ["10.9.9.9"]);
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    srv.stop().await;
    assert!(!config_with(up.addr, &workspace("public", "")).contains("probe."));
}

/// The config of every kind of local name holds the fixture workspace, which
/// it writes out again as TOML.
#[test]
fn the_every_kind_config_holds_the_fixture_workspace() {
    use crate::common::fixtures::{EVERY_KIND, GUID, NAME};
    let first = EVERY_KIND.split("[[workspace]]").nth(1).unwrap();
    assert!(
        first.contains(&format!("name = \"{NAME}\"\nid = \"{GUID}\"\n")),
        "{first}"
    );
}
