//! A stand-in for Azure Resource Manager, IMDS and Entra ID's token
//! endpoint on 127.0.0.1 (no test reaches Azure), over http or
//! https (a throwaway CA: tests/fixtures/tls), with scripted answers
//! (throttling, outages that pass); and an HTTP CONNECT proxy that opens tunnels
//! to loopback only. Its JSON is
//! shaped like the examples of the public REST API specs
//! (Azure/azure-rest-api-specs, `specification/<service>/resource-manager`),
//! checked against them: machinelearningservices 2024-04-01
//! Workspace/get.json and listBySubscription.json, Compute/list.json and
//! get/ComputeInstance.json, Workspace/OnlineEndpoint/list.json; network
//! PrivateEndpointGet.json (2024-01-01; the 2023-09-01 one has the same
//! shape) and NetworkInterfaceGet.json (2023-09-01); storage 2023-01-01
//! StorageAccountGetProperties.json and
//! StorageAccountGetPrivateEndpointConnection.json; keyvault 2023-07-01
//! getVault.json and getPrivateEndpointConnection.json; containerregistry
//! 2023-07-01 RegistryGet.json and RegistryListPrivateLinkResources.json
//! (the registry endpoint's two members). Written here, not
//! copied. Where the examples leave out what amldns reads (a workspace's
//! `workspaceId` and `notebookInfo`, a private endpoint NIC's
//! `privateLinkConnectionProperties`), the shape is the specs' definitions'.
//! An endpoint's VNet is its `properties.subnet.id`,
//! `…/virtualNetworks/<vnet>/subnets/<subnet>`, as in PrivateEndpointGet.json
//! (network 2024-01-01, commit 9c23125, compared 2026-12-07); the regional
//! inference wildcard an endpoint may list is the one Microsoft's custom-DNS
//! doc shows (`*.eastus.inference.ml.azure.com`).
//! Resource Graph's `POST /providers/Microsoft.ResourceGraph/resources`
//! (request and answer: `subscriptions`, `query`, `options.$top`,
//! `options.$skipToken`; `totalRecords`, `count`, `resultTruncated`,
//! `facets`, `$skipToken`, `data` with rows sorted by id and types
//! lower-cased) is shaped like resourcegraph 2022-10-01
//! ResourcesFirstPageQuery.json (commit 704e3a6) and
//! ResourcesNextPageQuery.json (commit c008a71), compared 2026-12-07; its
//! rows are the resources ARM serves here, as Resource Graph's `resources`
//! table holds them, with `subscriptionId` and `resourceGroup`. A query
//! over management groups (`managementGroups` instead of `subscriptions`)
//! is shaped like resourcegraph 2022-10-01 ResourcesMgBasicQuery.json
//! (`specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/
//! ResourceGraph/ResourceGraph/examples/2022-10-01/`, commit bd798bc,
//! compared 2026-12-07): the same answer, rows of the subscriptions under
//! the groups; a body naming both is refused, as Microsoft Learn's
//! "Understanding the Azure Resource Graph query language" (query scope)
//! says it cannot name both.
#![allow(dead_code)] // each test uses its own part

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The only token the stand-in hands out and accepts.
pub const TOKEN: &str = "standin-arm-token";
/// What the workload identity's projected token file holds.
pub const ASSERTION: &str = "standin-federated-jwt";
pub const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
/// A second subscription, for what one subscription's failure costs the other.
pub const SUB2: &str = "9c2e5d80-4b6a-4f1e-8d3c-444455556666";
pub const ML_API: &str = "2024-04-01";

/// The API version ARM is asked at for each provider: a stable folder of the
/// specs (`.../resource-manager/<namespace>/stable/<version>`). ARM refuses a
/// version a provider does not have, so the stand-in does too.
const API_VERSIONS: [(&str, &str); 6] = [
    ("microsoft.machinelearningservices", ML_API),
    ("microsoft.resourcegraph", "2022-10-01"),
    ("microsoft.network", "2023-09-01"),
    ("microsoft.storage", "2023-01-01"),
    ("microsoft.keyvault", "2023-07-01"),
    ("microsoft.containerregistry", "2023-07-01"),
];

/// The api-version a request under `path` must carry: its innermost
/// provider's (a NIC's path names only Microsoft.Network).
fn api_version_for(path: &str) -> Option<&'static str> {
    let path = path.to_ascii_lowercase();
    let (_, after) = path.rsplit_once("/providers/")?;
    let namespace = after.split('/').next()?;
    API_VERSIONS
        .iter()
        .find(|(n, _)| *n == namespace)
        .map(|(_, v)| *v)
}

/// How every ARM request is answered for now.
#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    /// This status, with these headers and an ARM error body; with
    /// `retry-after: 0` unless the headers set it, so that amldns's
    /// retries within a round take no time.
    Fail(u16, Vec<(&'static str, String)>),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers.
    Hang,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When its head had been read.
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct World {
    /// GET path (lower-case) → resource.
    pub docs: HashMap<String, Value>,
    /// List path (lower-case) → every entry; served in pages.
    pub lists: HashMap<String, Vec<Value>>,
    pub page_size: usize,
    pub mode: Option<Mode>,
    /// IMDS answers 500 (no identity on the VM, say), with `retry-after: 0`.
    pub imds_down: bool,
    /// The next ARM requests get these answers (status, headers), one
    /// each, before anything else: throttling and outages that pass.
    pub script: VecDeque<(u16, Vec<(&'static str, String)>)>,
    /// The same for the next IMDS requests.
    pub imds_script: VecDeque<(u16, Vec<(&'static str, String)>)>,
    /// `x-ms-ratelimit-remaining-subscription-reads` on every ARM answer.
    pub reads_remaining: Option<u32>,
    /// Connections accepted, on every listener (TLS handshakes included
    /// that then fail).
    pub connections: usize,
    /// Where `nextLink`s point, instead of the listener the list was
    /// asked at (`https://127.0.0.1:443` behind a proxy, say).
    pub link_base: Option<String>,
    /// GET path (lower-case) → the status and error code ARM answers for
    /// that one resource or list, whatever `docs` holds: see [`World::refuse`].
    /// Resource Graph leaves such a resource out of its rows.
    pub refused: HashMap<String, (u16, &'static str)>,
    /// Rows a Resource Graph page holds at most (its `$top` is obeyed
    /// when smaller).
    pub graph_page_size: usize,
    /// Every Resource Graph page after the first carries this
    /// `$skipToken`: a service that pages in a loop.
    pub graph_stuck_token: Option<String>,
    /// Management group id (lower-case) → the subscriptions under it; see
    /// [`World::place`]. Refused as a whole through `refused`, under
    /// [`group_id`].
    pub groups: HashMap<String, Vec<String>>,
    pub seen: Vec<Seen>,
}

pub struct ArmStandIn {
    pub addr: SocketAddr,
    pub world: Arc<Mutex<World>>,
    /// `http` or `https`.
    scheme: &'static str,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ArmStandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The certificate authority the HTTPS listeners' certificate is from
/// (tests/fixtures/tls/README.md): what `ca_file` names.
pub fn test_ca() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem")
}

/// A TLS server for 127.0.0.1 and localhost, from the fixture pair.
fn acceptor() -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Answers requests on `at` from `world`, over TLS when `tls` is given.
async fn listen(
    at: &str,
    world: Arc<Mutex<World>>,
    tls: Option<TlsAcceptor>,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(at).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            world.lock().unwrap().connections += 1;
            let (w, base, tls) = (world.clone(), base.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve(s, w, base).await,
                    Some(tls) => {
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(Duration::from_secs(5), tls.accept(s)).await
                        {
                            serve(s, w, base).await;
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

impl ArmStandIn {
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0", false).await
    }

    /// Over HTTPS, with the certificate of [`test_ca`].
    pub async fn start_tls() -> Self {
        Self::start_at("127.0.0.1:0", true).await
    }

    /// On `at` (another loopback address, say).
    pub async fn start_at(at: &str, tls: bool) -> Self {
        let world = Arc::new(Mutex::new(World {
            page_size: 2,
            graph_page_size: 2,
            ..World::default()
        }));
        let (addr, task) = listen(at, world.clone(), tls.then(acceptor)).await;
        ArmStandIn {
            addr,
            world,
            scheme: if tls { "https" } else { "http" },
            tasks: vec![task],
        }
    }

    /// One more HTTPS listener on the same world (IMDS apart from ARM);
    /// its URL.
    pub async fn also_tls(&mut self) -> String {
        let (addr, task) = listen("127.0.0.1:0", self.world.clone(), Some(acceptor())).await;
        self.tasks.push(task);
        format!("https://{addr}")
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.world.lock().unwrap().mode = Some(mode);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.world.lock().unwrap().seen.clone()
    }

    /// ARM requests seen so far (not token requests, not Resource Graph's).
    pub fn arm_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with("/subscriptions"))
            .count()
    }

    /// Resource Graph queries seen so far (each page counts).
    pub fn graph_queries(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.eq_ignore_ascii_case(GRAPH_PATH))
            .count()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap())
    }

    /// The `[azure]` section pointing at this stand-in, naming [`SUB`] and
    /// every other subscription a workspace was put in.
    pub fn section(&self, extra: &str) -> String {
        let mut subs = self.with(|w| {
            w.lists
                .keys()
                .filter_map(|k| k.strip_prefix("/subscriptions/"))
                .filter_map(|k| {
                    k.strip_suffix("/providers/microsoft.machinelearningservices/workspaces")
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        subs.push(SUB.to_string());
        subs.sort();
        subs.dedup();
        let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
        self.section_for(&subs, extra)
    }

    /// The `[azure]` section pointing at this stand-in, reading `subscriptions`.
    pub fn section_for(&self, subscriptions: &[&str], extra: &str) -> String {
        self.section_over(subscriptions, &[], extra)
    }

    /// The `[azure]` section pointing at this stand-in, reading
    /// `subscriptions` and `management_groups`; a key whose list is empty
    /// is left out.
    pub fn section_over(&self, subscriptions: &[&str], groups: &[&str], extra: &str) -> String {
        let mut section = "[azure]\n".to_string();
        for (key, list) in [
            ("subscriptions", subscriptions),
            ("management_groups", groups),
        ] {
            if !list.is_empty() {
                let quoted: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
                section.push_str(&format!("{key} = [{}]\n", quoted.join(", ")));
            }
        }
        format!(
            "{section}arm_endpoint = \"{0}\"\nimds_endpoint = \"{0}\"\n\
             max_reads_per_second = 10000\n{extra}\n",
            self.url()
        )
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    world: Arc<Mutex<World>>,
    base: String,
) {
    let Some(req) = read_request(&mut s).await else {
        return;
    };
    let (status, headers, body) = answer(&req, &world, &base);
    world.lock().unwrap().seen.push(req);
    if status == 0 {
        // Mode::Hang: hold the connection, say nothing.
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, at) = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break (i + 4, Instant::now());
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Seen {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
        at,
    })
}

fn token_body() -> String {
    json!({"access_token": TOKEN, "expires_in": "3599", "token_type": "Bearer",
           "resource": "https://management.azure.com/"})
    .to_string()
}

type Answer = (u16, Vec<(&'static str, String)>, String);

/// ARM's error answers: its common `ErrorResponse` body, and the
/// `x-ms-correlation-request-id` every ARM answer carries, new each time.
fn arm_error(status: u16, code: &str) -> Answer {
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = json!({"error": {"code": code, "message": code}}).to_string();
    let correlation = format!("c0{n:06x}-5a1e-4c0d-9e1f-{n:012x}");
    (
        status,
        vec![("x-ms-correlation-request-id", correlation)],
        body,
    )
}

fn answer(req: &Seen, world: &Mutex<World>, base: &str) -> Answer {
    let (status, mut headers, body) = answer_arm(req, world, base);
    if req.path.starts_with("/subscriptions")
        && let Some(n) = world.lock().unwrap().reads_remaining
    {
        headers.push(("x-ms-ratelimit-remaining-subscription-reads", n.to_string()));
    }
    (status, headers, body)
}

/// `retry-after: 0` added where `headers` give no Retry-After.
fn at_once(mut headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
    {
        headers.push(("retry-after", "0".into()));
    }
    headers
}

fn answer_arm(req: &Seen, world: &Mutex<World>, base: &str) -> Answer {
    let error = arm_error;
    // IMDS: only with `Metadata: true`, as the real one.
    if req.path == "/metadata/identity/oauth2/token" {
        if req.header("metadata") != Some("true") || !req.query.contains("resource=") {
            return error(400, "bad_request");
        }
        let mut w = world.lock().unwrap();
        if let Some((status, headers)) = w.imds_script.pop_front() {
            return (status, headers, String::new());
        }
        if w.imds_down {
            let (s, _, b) = error(500, "identity_unavailable");
            return (s, at_once(Vec::new()), b);
        }
        return (200, Vec::new(), token_body());
    }
    // Entra ID's token endpoint, for workload identity.
    if req.path.ends_with("/oauth2/v2.0/token") {
        let ok = req.method == "POST"
            && req.body.contains(&format!("client_assertion={ASSERTION}"))
            && req.body.contains("grant_type=client_credentials");
        return if ok {
            let body = json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"});
            (200, Vec::new(), body.to_string())
        } else {
            error(401, "invalid_client")
        };
    }
    if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(401, "AuthenticationFailed");
    }
    let Some(asked) = req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
    else {
        return error(400, "MissingApiVersionParameter");
    };
    if api_version_for(&req.path).is_some_and(|v| v != asked) {
        return error(400, "NoRegisteredProviderFound");
    }
    let mut w = world.lock().unwrap();
    if let Some((status, headers)) = w.script.pop_front() {
        let (s, _, b) = error(status, "Scripted");
        return (s, headers, b);
    }
    match &w.mode {
        Some(Mode::Fail(status, headers)) => {
            let (s, mut h, b) = error(*status, "Failed");
            h.extend(at_once(headers.clone()));
            return (s, h, b);
        }
        Some(Mode::Garbage) => return (200, Vec::new(), "<html>gateway</html>".into()),
        Some(Mode::Hang) => return (0, Vec::new(), String::new()),
        Some(Mode::Normal) | None => {}
    }
    let key = req.path.to_ascii_lowercase();
    if key == GRAPH_PATH.to_ascii_lowercase() {
        return graph(req, &w);
    }
    if let Some((status, code)) = w.refused.get(&key) {
        return error(*status, code);
    }
    if let Some(all) = w.lists.get(&key) {
        let from: usize = req
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("$skipToken="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let to = (from + w.page_size).min(all.len());
        let mut page = json!({"value": all[from.min(all.len())..to]});
        // ARM's nextLink is absolute and carries the api-version asked.
        if to < all.len() {
            let base = w.link_base.as_deref().unwrap_or(base);
            page["nextLink"] =
                format!("{base}{}?api-version={asked}&$skipToken={to}", req.path).into();
        }
        return (200, Vec::new(), page.to_string());
    }
    match w.docs.get(&key) {
        Some(doc) => (200, Vec::new(), doc.to_string()),
        None => error(404, "ResourceNotFound"),
    }
}

// ---- Resource Graph ----------------------------------------------------------------

pub const GRAPH_PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

/// The one narrowing amldns adds to a type's query: NICs of private
/// endpoints only.
const NICS_OF_ENDPOINTS: &str = " | where isnotnull(properties.privateEndpoint)";

/// A Resource Graph query (`resources | where type =~ '<type>'`, and
/// [`NICS_OF_ENDPOINTS`]) answered from the resources ARM serves: every
/// resource and list entry of that type in the subscriptions asked, less
/// those ARM refuses, sorted by id (Resource Graph pages in a stable
/// order), with `subscriptionId` and `resourceGroup` added and the type
/// lower-cased as Resource Graph gives them. `$skipToken` is the next
/// row's index.
fn graph(req: &Seen, w: &World) -> Answer {
    let bad = |why: &str| {
        let body = json!({"error": {"code": "BadRequest", "message": why}}).to_string();
        (400, Vec::new(), body)
    };
    if req.method != "POST" {
        return bad("not a POST");
    }
    let Ok(body) = serde_json::from_str::<Value>(&req.body) else {
        return bad("not JSON");
    };
    let named = |member: &str| -> Vec<String> {
        (body[member].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let groups = named("managementGroups");
    if !groups.is_empty() && !body["subscriptions"].is_null() {
        return bad("subscriptions and managementGroups together");
    }
    // A group's query covers the subscriptions under it; one the identity
    // may not read refuses the whole query.
    let mut subs = named("subscriptions");
    for g in &groups {
        if let Some((status, code)) = w.refused.get(&group_id(g).to_ascii_lowercase()) {
            return arm_error(*status, code);
        }
        match w.groups.get(g) {
            Some(under) => subs.extend(under.iter().map(|s| s.to_ascii_lowercase())),
            None => return arm_error(403, "AuthorizationFailed"),
        }
    }
    let query = body["query"].as_str().unwrap_or_default();
    // The subscriptions themselves: those asked for that exist, as Resource
    // Graph leaves out the others without an error.
    if query == "resourcecontainers | where type =~ 'microsoft.resources/subscriptions'" {
        let data: Vec<Value> = (subs.iter())
            .filter(|s| !w.refused.contains_key(&World::list_path_in(s)))
            .map(|s| {
                json!({"id": format!("/subscriptions/{s}"), "name": s, "subscriptionId": s,
                       "type": "microsoft.resources/subscriptions"})
            })
            .collect();
        let body = json!({"totalRecords": data.len(), "count": data.len(),
                          "resultTruncated": "false", "data": data});
        return (200, Vec::new(), body.to_string());
    }
    let Some(rest) = query.strip_prefix("resources | where type =~ '") else {
        return bad("a query the stand-in does not know");
    };
    let Some((ty, tail)) = rest.split_once('\'') else {
        return bad("an unterminated type");
    };
    let only_endpoint_nics = match tail {
        "" => false,
        NICS_OF_ENDPOINTS => true,
        _ => return bad("a narrowing the stand-in does not know"),
    };
    let options = &body["options"];
    if options["resultFormat"] != "objectArray" {
        return bad("resultFormat is not objectArray");
    }
    let top = options["$top"].as_u64().unwrap_or(100) as usize;
    let from: usize = match options["$skipToken"].as_str() {
        None => 0,
        Some(t) => match w.graph_stuck_token.as_deref() {
            Some(stuck) if t == stuck => w.graph_page_size,
            _ => match t.parse() {
                Ok(n) => n,
                Err(_) => return bad("a $skipToken the stand-in did not give"),
            },
        },
    };
    let id_of = |v: &Value| v["id"].as_str().unwrap_or_default().to_ascii_lowercase();
    let mut ids = std::collections::HashSet::new();
    // Borrowed until the page is cut: a page clones its rows only.
    let mut rows: Vec<(String, &Value)> = Vec::new();
    for v in w.lists.values().flatten().chain(w.docs.values()) {
        let id = id_of(v);
        let in_subs = subs
            .iter()
            .any(|s| id.starts_with(&format!("/subscriptions/{s}/")));
        if !v["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(ty))
            || !in_subs
            || w.refused.contains_key(&id)
            || (only_endpoint_nics && v["properties"]["privateEndpoint"].is_null())
            || !ids.insert(id.clone())
        {
            continue;
        }
        rows.push((id, v));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let to = (from + top.min(w.graph_page_size)).min(rows.len());
    let data: Vec<Value> = rows[from.min(to)..to]
        .iter()
        .map(|(id, v)| {
            let mut row = (*v).clone();
            let mut parts = id.split('/');
            row["subscriptionId"] = parts.nth(2).unwrap_or_default().into();
            row["resourceGroup"] = parts.nth(1).unwrap_or_default().into();
            row["type"] = ty.to_ascii_lowercase().into();
            row
        })
        .collect();
    let mut page = json!({"totalRecords": rows.len(), "count": data.len(),
        "resultTruncated": "false", "facets": [], "data": data});
    if to < rows.len() {
        page["$skipToken"] = match &w.graph_stuck_token {
            Some(stuck) => stuck.clone(),
            None => to.to_string(),
        }
        .into();
    }
    (200, Vec::new(), page.to_string())
}

// ---- the world's shapes ----------------------------------------------------------

/// How a workspace's private endpoint is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    None,
    Pending,
    /// Approved, names in `customDnsConfigs`.
    Custom,
    /// Approved, `customDnsConfigs` emptied by a DNS zone group: names on the NIC.
    Nic,
}

/// A workspace of the stand-in's world.
#[derive(Debug, Clone)]
pub struct Ws {
    /// The subscription it is in ([`SUB`] unless set).
    pub sub: String,
    pub name: String,
    pub id: String,
    pub region: String,
    /// "public", "china", "usgov".
    pub cloud: &'static str,
    pub rg: String,
    pub kind: &'static str,
    pub hub: Option<String>,
    pub endpoint: Endpoint,
    /// API, notebook, inference.
    pub ips: [&'static str; 3],
    /// (name, computeType).
    pub computes: Vec<(String, &'static str)>,
    pub online_endpoints: Vec<String>,
    /// The storage account's own private endpoint address, if it has one.
    pub storage_ip: Option<&'static str>,
    pub notebook_fqdn_in_workspace: bool,
    /// Azure's notebooks label when it is not the derived one (Azure does
    /// not document every corner of its cut).
    pub notebook_label: Option<String>,
    /// The key vault's own private endpoint address, if it has one.
    pub vault_ip: Option<&'static str>,
    /// A container registry (else `containerRegistry` is null), behind its
    /// own private endpoint: the login server's and the regional data
    /// endpoint's addresses.
    pub registry_ips: Option<[&'static str; 2]>,
    /// `properties.workspaceId` in what ARM lists (the specs mark it
    /// read-only, not required).
    pub workspace_id_listed: bool,
    /// The endpoint lists the regional inference wildcard,
    /// `*.<region>.inference.ml.azure.com`, as Microsoft's custom-DNS doc
    /// shows it, instead of the workspace's own `*.<id>.inference.…`.
    pub regional_inference: bool,
    /// A second approved endpoint for the workspace (and for its storage
    /// account, when that has one) in another VNet, as a hub-and-spoke
    /// network has: its VNet's name and addresses.
    pub spoke: Option<Spoke>,
}

/// A workspace's second private endpoint, in another VNet.
#[derive(Debug, Clone)]
pub struct Spoke {
    pub vnet: &'static str,
    /// API, notebook, inference.
    pub ips: [&'static str; 3],
    pub storage_ip: Option<&'static str>,
}

/// The VNet every endpoint sits in unless it is a [`Spoke`]'s.
pub const VNET: &str = "vnet";

/// A VNet's resource id, as `virtual_networks` names it.
pub fn vnet_id(vnet: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/{vnet}"
    )
}

impl Ws {
    pub fn new(name: &str, id: &str, region: &str) -> Self {
        Ws {
            sub: SUB.into(),
            name: name.into(),
            id: id.into(),
            region: region.into(),
            cloud: "public",
            rg: "rg-ml".into(),
            kind: "Default",
            hub: None,
            endpoint: Endpoint::Custom,
            ips: ["10.1.0.5", "10.1.0.6", "10.1.0.7"],
            computes: Vec::new(),
            online_endpoints: Vec::new(),
            storage_ip: None,
            notebook_fqdn_in_workspace: true,
            notebook_label: None,
            vault_ip: None,
            registry_ips: None,
            regional_inference: false,
            spoke: None,
            workspace_id_listed: true,
        }
    }

    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.sub, self.rg, self.name
        )
    }

    fn rg_id(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/{}", self.sub, self.rg)
    }

    pub fn suffixes(&self) -> (&'static str, &'static str) {
        match self.cloud {
            "china" => ("api.ml.azure.cn", "notebooks.chinacloudapi.cn"),
            "usgov" => ("api.ml.azure.us", "notebooks.usgovcloudapi.net"),
            _ => ("api.azureml.ms", "notebooks.azure.net"),
        }
    }

    /// A compute instance's `properties.properties.applications`, shaped as
    /// in the REST specs' Compute/get/ComputeInstance.json (machinelearningservices
    /// 2024-04-01, commit a2477ac, compared 2026-12-07): Jupyter and RStudio
    /// under the instances zone, and the example's own host, which lies
    /// under none (`<instance>.<region>.azureml.net`).
    pub fn applications(&self, instance: &str) -> Value {
        let zone = match self.cloud {
            "china" => "instances.azureml.cn",
            "usgov" => "instances.azureml.us",
            _ => "instances.azureml.ms",
        };
        let r = &self.region;
        json!([
            {"displayName": "Jupyter", "endpointUri": format!("https://{instance}.{r}.{zone}/tree/")},
            {"displayName": "RStudio", "endpointUri": format!("https://{instance}-8787.{r}.{zone}/")},
            {"displayName": "Jupyter (example)", "endpointUri": format!("https://{instance}.{r}.azureml.net/jupyter")},
        ])
    }

    pub fn api_name(&self) -> String {
        format!(
            "{}.workspace.{}.{}",
            self.id,
            self.region,
            self.suffixes().0
        )
    }

    pub fn notebooks_name(&self) -> String {
        let derived = || amldns::names::notebook_label(&self.name, &self.region, &self.id);
        format!(
            "{}.{}.{}",
            self.notebook_label.clone().unwrap_or_else(derived),
            self.region,
            self.suffixes().1
        )
    }

    /// The workspace's own private endpoint.
    pub fn endpoint_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Network/privateEndpoints/pe-{}",
            self.rg_id(),
            self.name
        )
    }

    /// Its second endpoint, in the [`Spoke`]'s VNet.
    pub fn spoke_endpoint_id(&self) -> String {
        format!("{}-spoke", self.endpoint_id())
    }

    pub fn registry_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.ContainerRegistry/registries/cr{}",
            self.rg_id(),
            self.name.replace('-', "")
        )
    }

    /// The key vault's name in DNS (its `vaultUri`'s host).
    pub fn vault_name(&self) -> String {
        format!("kv{}.vault.azure.net", self.name.replace('-', ""))
    }

    /// The registry's login server and its data endpoint in the workspace's region.
    pub fn registry_names(&self) -> [String; 2] {
        let cr = format!("cr{}", self.name.replace('-', ""));
        [
            format!("{cr}.azurecr.io"),
            format!("{cr}.{}.data.azurecr.io", self.region),
        ]
    }

    pub fn storage_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/st{}",
            self.rg_id(),
            self.name.replace('-', "")
        )
    }

    pub fn vault_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.KeyVault/vaults/kv{}",
            self.rg_id(),
            self.name.replace('-', "")
        )
    }

    pub fn storage_name(&self) -> String {
        format!("st{}.blob.core.windows.net", self.name.replace('-', ""))
    }
}

/// One entry of `owner`'s `properties.privateEndpointConnections`: a child
/// resource of the owner (its id under the owner's), naming the endpoint.
fn connection(owner: &str, owner_type: &str, pe: &str, status: &str) -> Value {
    let name = format!("{}.conn", pe.rsplit('/').next().unwrap_or(pe));
    json!({"id": format!("{owner}/privateEndpointConnections/{name}"), "name": name,
        "type": format!("{owner_type}/privateEndpointConnections"),
        "properties": {
            "provisioningState": "Succeeded",
            "privateEndpoint": {"id": pe},
            "privateLinkServiceConnectionState": {"status": status, "description": "", "actionsRequired": "None"}}})
}

/// The endpoint's side of a connection to `target`: auto-approved ones in
/// `privateLinkServiceConnections`, those waiting for approval in
/// `manualPrivateLinkServiceConnections`.
struct Link<'a> {
    target: &'a str,
    group: &'a str,
    status: &'a str,
}

impl World {
    pub fn list_path(&self) -> String {
        Self::list_path_in(SUB)
    }

    /// `sub`'s workspace list.
    pub fn list_path_in(sub: &str) -> String {
        format!("/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/workspaces")
            .to_ascii_lowercase()
    }

    /// Adds (or replaces) `ws` and everything it points at.
    pub fn put(&mut self, ws: &Ws) {
        let rid = ws.resource_id();
        let pe = ws.endpoint_id();
        const WS_TYPE: &str = "Microsoft.MachineLearningServices/workspaces";
        let status = match ws.endpoint {
            Endpoint::Pending => "Pending",
            Endpoint::None | Endpoint::Custom | Endpoint::Nic => "Approved",
        };
        let mut connections = match ws.endpoint {
            Endpoint::None => vec![],
            _ => vec![connection(&rid, WS_TYPE, &pe, status)],
        };
        if ws.spoke.is_some() {
            let spoke = ws.spoke_endpoint_id();
            connections.push(connection(&rid, WS_TYPE, &spoke, "Approved"));
        }
        let mut props = json!({
            "workspaceId": ws.id,
            "friendlyName": ws.name,
            "storageAccount": ws.storage_id(),
            "keyVault": ws.vault_id(),
            "applicationInsights": format!("{}/providers/microsoft.insights/components/ai", ws.rg_id()),
            // Null until the first image build creates one.
            "containerRegistry": ws.registry_ips.map(|_| ws.registry_id()),
            "privateEndpointConnections": connections,
            "privateLinkCount": connections.len(),
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Disabled",
        });
        if ws.notebook_fqdn_in_workspace {
            props["notebookInfo"] = json!({"resourceId": ws.id.replace('-', ""),
                "fqdn": ws.notebooks_name(), "isPrivateLinkEnabled": true,
                "notebookPreparationError": null});
        }
        if let Some(h) = &ws.hub {
            props["hubResourceId"] = h.clone().into();
        }
        if !ws.workspace_id_listed {
            props.as_object_mut().unwrap().remove("workspaceId");
        }
        let doc = json!({"id": rid, "name": ws.name, "type": WS_TYPE,
            "location": ws.region, "kind": ws.kind, "properties": props,
            "identity": {"type": "SystemAssigned"}, "sku": {"name": "Basic", "tier": "Basic"}});
        let list = Self::list_path_in(&ws.sub);
        let all = self.lists.entry(list).or_default();
        all.retain(|v| v["id"] != rid.as_str());
        all.push(doc);

        let (api, _) = ws.suffixes();
        let inference = if ws.regional_inference {
            format!("*.{}.inference.ml.azure.com", ws.region)
        } else {
            format!("*.{}.inference.{}.{api}", ws.id, ws.region)
        };
        let names = |ips: [&'static str; 3]| {
            [
                (ws.api_name(), ips[0]),
                (
                    format!("{}.workspace.{}.cert.{api}", ws.id, ws.region),
                    ips[0],
                ),
                (ws.notebooks_name(), ips[1]),
                (inference.clone(), ips[2]),
            ]
        };
        let link = Link {
            target: &rid,
            group: "amlworkspace",
            status,
        };
        let nic = ws.endpoint == Endpoint::Nic;
        self.put_endpoint(&pe, &link, &names(ws.ips), nic, VNET);
        if let Some(spoke) = &ws.spoke {
            let link = Link {
                status: "Approved",
                ..link
            };
            self.put_endpoint(
                &ws.spoke_endpoint_id(),
                &link,
                &names(spoke.ips),
                nic,
                spoke.vnet,
            );
        }

        let computes: Vec<Value> = ws
            .computes
            .iter()
            .map(|(n, t)| {
                let mut c = json!({"id": format!("{rid}/computes/{n}"), "name": n,
                    "type": "Microsoft.MachineLearningServices/workspaces/computes",
                    "location": ws.region, "properties": {"computeType": t, "provisioningState": "Succeeded"}});
                if *t == "ComputeInstance" {
                    c["properties"]["properties"] = json!({"state": "Running",
                        "applications": ws.applications(n)});
                }
                c
            })
            .collect();
        self.lists
            .insert(format!("{rid}/computes").to_ascii_lowercase(), computes);
        let eps: Vec<Value> = ws
            .online_endpoints
            .iter()
            .map(|n| json!({"id": format!("{rid}/onlineEndpoints/{n}"), "name": n,
                "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                "location": ws.region, "kind": "Managed",
                "properties": {"authMode": "Key", "scoringUri": format!("https://{n}.{}.inference.ml.azure.com/score", ws.region)}}))
            .collect();
        self.lists
            .insert(format!("{rid}/onlineEndpoints").to_ascii_lowercase(), eps);

        // The storage account, behind its own endpoint or not; the key
        // vault never (it stays public).
        let st_pe = format!(
            "{}/providers/Microsoft.Network/privateEndpoints/pe-st-{}",
            ws.rg_id(),
            ws.name
        );
        const ST_TYPE: &str = "Microsoft.Storage/storageAccounts";
        let st_id = ws.storage_id();
        let st_name = st_id.rsplit('/').next().unwrap_or_default();
        let spoke_st = ws
            .spoke
            .as_ref()
            .and_then(|s| Some((s.storage_ip?, s.vnet)));
        let st_spoke_pe = format!("{st_pe}-spoke");
        let st_conn: Vec<Value> = (ws.storage_ip.map(|_| &st_pe).into_iter())
            .chain(spoke_st.map(|_| &st_spoke_pe))
            .map(|pe| connection(&st_id, ST_TYPE, pe, "Approved"))
            .collect();
        self.docs.insert(
            st_id.to_ascii_lowercase(),
            json!({"id": st_id, "name": st_name, "type": ST_TYPE, "kind": "StorageV2",
                   "location": ws.region, "sku": {"name": "Standard_LRS", "tier": "Standard"},
                   "properties": {"provisioningState": "Succeeded",
                       "primaryEndpoints": {"blob": format!("https://{}/", ws.storage_name())},
                       "privateEndpointConnections": st_conn}}),
        );
        if let Some(ip) = ws.storage_ip {
            let link = Link {
                target: &st_id,
                group: "blob",
                status: "Approved",
            };
            self.put_endpoint(&st_pe, &link, &[(ws.storage_name(), ip)], false, VNET);
            if let Some((ip, vnet)) = spoke_st {
                let names = [(ws.storage_name(), ip)];
                self.put_endpoint(&st_spoke_pe, &link, &names, false, vnet);
            }
        }
        let kv_id = ws.vault_id();
        let kv_name = kv_id.rsplit('/').next().unwrap_or_default();
        const KV_TYPE: &str = "Microsoft.KeyVault/vaults";
        let kv_pe = format!(
            "{}/providers/Microsoft.Network/privateEndpoints/pe-kv-{}",
            ws.rg_id(),
            ws.name
        );
        let kv_conn: Vec<Value> = ws
            .vault_ip
            .map(|_| connection(&kv_id, KV_TYPE, &kv_pe, "Approved"))
            .into_iter()
            .collect();
        self.docs.insert(
            kv_id.to_ascii_lowercase(),
            json!({"id": kv_id, "name": kv_name, "type": KV_TYPE,
                   "location": ws.region, "tags": {},
                   "properties": {"sku": {"family": "A", "name": "standard"},
                       "tenantId": "00000000-0000-0000-0000-000000000000",
                       "vaultUri": format!("https://{kv_name}.vault.azure.net/"),
                       "provisioningState": "Succeeded",
                       "publicNetworkAccess": "Disabled",
                       "privateEndpointConnections": kv_conn}}),
        );
        if let Some(ip) = ws.vault_ip {
            let link = Link {
                target: &kv_id,
                group: "vault",
                status: "Approved",
            };
            self.put_endpoint(&kv_pe, &link, &[(ws.vault_name(), ip)], false, VNET);
        }
        // The registry (RegistryGet.json's shape), once an image build made
        // one; its endpoint lists the login server and the data endpoint of
        // the region, each at its own address (groupId "registry").
        if let Some(ips) = ws.registry_ips {
            const CR_TYPE: &str = "Microsoft.ContainerRegistry/registries";
            let cr_id = ws.registry_id();
            let cr_name = cr_id.rsplit('/').next().unwrap_or_default();
            let cr_pe = format!(
                "{}/providers/Microsoft.Network/privateEndpoints/pe-cr-{}",
                ws.rg_id(),
                ws.name
            );
            let [login, data] = ws.registry_names();
            self.docs.insert(
                cr_id.to_ascii_lowercase(),
                json!({"id": cr_id, "name": cr_name, "type": CR_TYPE,
                       "location": ws.region, "tags": {},
                       "sku": {"name": "Premium", "tier": "Premium"},
                       "properties": {"loginServer": login,
                           "provisioningState": "Succeeded", "adminUserEnabled": false,
                           "dataEndpointEnabled": false, "dataEndpointHostNames": [],
                           "publicNetworkAccess": "Disabled",
                           "privateEndpointConnections": [connection(&cr_id, CR_TYPE, &cr_pe, "Approved")]}}),
            );
            let link = Link {
                target: &cr_id,
                group: "registry",
                status: "Approved",
            };
            let names = [(login, ips[0]), (data, ips[1])];
            self.put_endpoint(&cr_pe, &link, &names, false, VNET);
        }
    }

    /// A private endpoint in a subnet of `vnet` listing `names`: in
    /// `customDnsConfigs`, or (a DNS zone group attached) on its NIC.
    fn put_endpoint(
        &mut self,
        pe: &str,
        link: &Link<'_>,
        names: &[(String, &str)],
        nic: bool,
        vnet: &str,
    ) {
        let pe_name = pe.rsplit('/').next().unwrap_or(pe);
        let nic_id = format!("{pe}.nic.0a1b2c3d").replace("privateEndpoints", "networkInterfaces");
        let custom: Vec<Value> = names
            .iter()
            .map(|(n, ip)| json!({"fqdn": n, "ipAddresses": [ip]}))
            .collect();
        let plsc = json!({"id": format!("{pe}/privateLinkServiceConnections/{pe_name}"),
            "name": pe_name, "properties": {
                "privateLinkServiceId": link.target, "groupIds": [link.group],
                "privateLinkServiceConnectionState": {"status": link.status, "description": "", "actionsRequired": "None"}}});
        let (auto, manual) = if link.status == "Approved" {
            (vec![plsc], vec![])
        } else {
            (vec![], vec![plsc])
        };
        let doc = json!({"id": pe, "name": pe_name, "type": "Microsoft.Network/privateEndpoints", "properties": {
            "provisioningState": "Succeeded",
            "privateLinkServiceConnections": auto,
            "manualPrivateLinkServiceConnections": manual,
            "subnet": {"id": format!("{}/subnets/pe", vnet_id(vnet))},
            "networkInterfaces": [{"id": nic_id}],
            "customDnsConfigs": if nic { vec![] } else { custom },
            "applicationSecurityGroups": [],
            "ipConfigurations": [],
        }});
        // ARM's list of the subscription's private endpoints holds it too.
        let sub = pe.split('/').nth(2).unwrap_or_default();
        let list = (self.lists)
            .entry(format!(
                "/subscriptions/{sub}/providers/microsoft.network/privateendpoints"
            ))
            .or_default();
        list.retain(|v| {
            !v["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(pe))
        });
        list.push(doc.clone());
        self.docs.insert(pe.to_ascii_lowercase(), doc);
        // One IP configuration per address, its FQDNs with it.
        let mut by_ip: Vec<(&str, Vec<&String>)> = Vec::new();
        for (n, ip) in names {
            match by_ip.iter_mut().find(|(i, _)| i == ip) {
                Some((_, v)) => v.push(n),
                None => by_ip.push((ip, vec![n])),
            }
        }
        let ipconfigs: Vec<Value> = by_ip
            .iter()
            .enumerate()
            .map(|(i, (ip, fqdns))| {
                let name = format!("privateEndpointIpConfig.{i:08x}");
                // A registry's members: "registry" and "registry_data_<region>"
                // (RegistryListPrivateLinkResources.json); one member elsewhere.
                let member = match (link.group, fqdns[0].split('.').nth(1)) {
                    ("registry", Some(region)) if fqdns[0].contains(".data.") => {
                        format!("registry_data_{region}")
                    }
                    ("registry", _) => "registry".to_string(),
                    _ => "default".to_string(),
                };
                json!({"name": name, "id": format!("{nic_id}/ipConfigurations/{name}"), "properties": {
                    "provisioningState": "Succeeded",
                    "privateIPAddress": ip, "privateIPAllocationMethod": "Dynamic",
                    "privateIPAddressVersion": "IPv4", "primary": i == 0,
                    "privateLinkConnectionProperties": {"groupId": link.group, "requiredMemberName": member, "fqdns": fqdns}}})
            })
            .collect();
        let nic_name = nic_id.rsplit('/').next().unwrap_or_default();
        self.docs.insert(
            nic_id.to_ascii_lowercase(),
            json!({"id": nic_id, "name": nic_name, "type": "Microsoft.Network/networkInterfaces",
                   "properties": {"provisioningState": "Succeeded", "ipConfigurations": ipconfigs,
                       "privateEndpoint": {"id": pe}, "nicType": "Standard"}}),
        );
    }

    /// A private endpoint of some other resource (`target`: a Foundry
    /// account, a search service…), in the target's resource group, listing
    /// `names` in `customDnsConfigs`, its connection `status` ("Approved",
    /// "Pending") on the endpoint's side; its id.
    pub fn put_other_endpoint(
        &mut self,
        target: &str,
        group: &str,
        status: &str,
        names: &[(&str, &str)],
    ) -> String {
        let (group_path, _) = target.split_once("/providers/").unwrap_or((target, ""));
        let name = target.rsplit('/').next().unwrap_or_default();
        let pe = format!("{group_path}/providers/Microsoft.Network/privateEndpoints/pe-{name}");
        let link = Link {
            target,
            group,
            status,
        };
        let names: Vec<(String, &str)> = names.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
        self.put_endpoint(&pe, &link, &names, false, VNET);
        pe
    }

    /// Removes every workspace of every subscription.
    pub fn clear_workspaces(&mut self) {
        for (path, entries) in &mut self.lists {
            if path.ends_with("/providers/microsoft.machinelearningservices/workspaces") {
                entries.clear();
            }
        }
    }

    /// Removes `ws` from the workspace list (what it pointed at stays, as
    /// ARM keeps a deleted workspace's endpoints until someone removes them).
    pub fn remove(&mut self, ws: &Ws) {
        let list = Self::list_path_in(&ws.sub);
        let rid = ws.resource_id();
        if let Some(all) = self.lists.get_mut(&list) {
            all.retain(|v| v["id"] != rid.as_str());
        }
    }

    /// From now on ARM answers `status` (401, 403, 404) for the resource
    /// `id`, with the error code it gives for that status: a resource in a
    /// tenant the token is not from, a role that does not reach it, a
    /// resource deleted since it was listed.
    pub fn refuse(&mut self, id: &str, status: u16) {
        let code = match status {
            401 => "InvalidAuthenticationTokenTenant",
            403 => "AuthorizationFailed",
            404 => "ResourceNotFound",
            _ => "Failed",
        };
        self.refused.insert(id.to_ascii_lowercase(), (status, code));
    }

    /// Puts `subs` under the management group `group`, for Resource
    /// Graph's queries over it.
    pub fn place(&mut self, group: &str, subs: &[&str]) {
        let under = self.groups.entry(group.to_ascii_lowercase()).or_default();
        under.extend(subs.iter().map(|s| s.to_string()));
    }

    /// From now on ARM does not know `sub` (deleted, moved to another
    /// tenant): its workspace list answers 404 `SubscriptionNotFound`.
    pub fn lose_subscription(&mut self, sub: &str) {
        let list = Self::list_path_in(sub);
        self.refused.insert(list, (404, "SubscriptionNotFound"));
    }
}

impl World {
    /// Gives `ws` (already put) one more approved private endpoint
    /// connection, to the endpoint id `pe` as written (a hostile one, say).
    pub fn add_connection(&mut self, ws: &Ws, pe: &str) {
        let rid = ws.resource_id();
        let conn = connection(
            &rid,
            "Microsoft.MachineLearningServices/workspaces",
            pe,
            "Approved",
        );
        let list = World::list_path_in(&ws.sub);
        let entries = self.lists.get_mut(&list).into_iter().flatten();
        let doc = self.docs.get_mut(&rid.to_ascii_lowercase());
        for v in entries.filter(|v| v["id"] == rid.as_str()).chain(doc) {
            v["properties"]["privateEndpointConnections"]
                .as_array_mut()
                .unwrap()
                .push(conn.clone());
        }
    }
}

/// A management group's resource id: [`World::refuse`] it, and Resource
/// Graph refuses every query over it.
pub fn group_id(group: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{group}")
}

// ---- an HTTP CONNECT proxy ---------------------------------------------------------

/// A proxy on 127.0.0.1 that opens tunnels (RFC 9110 §9.3.6) to loopback
/// only, and counts them by the target asked for.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    /// Each CONNECT's target, as asked.
    pub tunnels: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectProxy {
    /// `routes`: targets sent elsewhere (`127.0.0.1:443` to a stand-in's
    /// port, say); any other target must be a loopback address and port.
    pub async fn start(routes: Vec<(String, SocketAddr)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(tunnel(s, seen.clone(), routes.clone()));
            }
        });
        ConnectProxy {
            addr,
            tunnels,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

async fn tunnel(
    mut s: TcpStream,
    seen: Arc<Mutex<Vec<String>>>,
    routes: Arc<Vec<(String, SocketAddr)>>,
) {
    let Some(req) = read_request(&mut s).await else {
        return;
    };
    if req.method != "CONNECT" {
        let _ = s.write_all(b"HTTP/1.1 405 Only CONNECT\r\n\r\n").await;
        return;
    }
    // `CONNECT host:port`: the request target is the authority.
    let target = req.path.clone();
    seen.lock().unwrap().push(target.clone());
    let to = routes
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, a)| *a)
        .or_else(|| target.parse::<SocketAddr>().ok())
        .filter(|a| a.ip().is_loopback());
    let Some(to) = to else {
        let _ = s.write_all(b"HTTP/1.1 403 Loopback only\r\n\r\n").await;
        return;
    };
    let Ok(mut up) = TcpStream::connect(to).await else {
        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::copy_bidirectional(&mut s, &mut up),
        )
        .await;
    }
}
