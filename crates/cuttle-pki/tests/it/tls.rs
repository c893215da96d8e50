//! Mutual TLS over loopback with real sockets: pins on both sides decide who gets in.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cuttle_pki::rustls::pki_types::ServerName;
use cuttle_pki::rustls::{ClientConfig, ServerConfig};
use cuttle_pki::{
    ALPN_H2, Identity, PeerRole, PkiError, ThumbprintSet, client_config, find_untrusted_peer,
    peer_thumbprint, server_config,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What one side saw of a connection that completed and exchanged a message.
#[derive(Debug)]
struct Side {
    peer_thumbprint: Option<String>,
    alpn: Option<Vec<u8>>,
    received: Vec<u8>,
}

/// Connects a client to a server over loopback; the client sends `ping`, the server answers
/// `pong`. Returns what each side saw, or the error that stopped it.
async fn exchange(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (io::Result<Side>, io::Result<Side>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await?;
        let mut received = vec![0; 4];
        stream.read_exact(&mut received).await?;
        stream.write_all(b"pong").await?;
        stream.shutdown().await?;
        let connection = stream.get_ref().1;
        Ok(Side {
            peer_thumbprint: peer_thumbprint(connection),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            received,
        })
    });
    let client_side = async move {
        let tcp = TcpStream::connect(address).await?;
        // Names are not checked: the pin is the identity.
        let name = ServerName::try_from("not-the-server.invalid").expect("a valid name");
        let mut stream = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await?;
        stream.write_all(b"ping").await?;
        stream.flush().await?;
        let mut received = vec![0; 4];
        stream.read_exact(&mut received).await?;
        let connection = stream.get_ref().1;
        Ok(Side {
            peer_thumbprint: peer_thumbprint(connection),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            received,
        })
    };
    tokio::time::timeout(Duration::from_secs(20), async move {
        let client_result = client_side.await;
        let server_result = server_side.await.expect("the server task ends");
        (server_result, client_result)
    })
    .await
    .expect("the exchange finishes")
}

fn identity(name: &str) -> Identity {
    Identity::generate(name).expect("a new identity")
}

fn trusting(thumbprints: &[&str]) -> Arc<ThumbprintSet> {
    Arc::new(ThumbprintSet::with_thumbprints(thumbprints).expect("valid thumbprints"))
}

fn expecting(thumbprint: &str) -> Vec<String> {
    vec![thumbprint.to_owned()]
}

#[tokio::test]
async fn matching_pins_on_both_sides_complete_a_handshake_and_exchange_bytes() {
    let server_identity = identity("server");
    let agent_identity = identity("agent");
    let server = server_config(&server_identity, trusting(&[agent_identity.thumbprint()])).unwrap();
    let client = client_config(&agent_identity, expecting(server_identity.thumbprint())).unwrap();

    let (server_side, client_side) = exchange(server, client).await;
    let server_side = server_side.unwrap();
    let client_side = client_side.unwrap();
    assert_eq!(server_side.received, b"ping");
    assert_eq!(client_side.received, b"pong");
    assert_eq!(
        server_side.peer_thumbprint.as_deref(),
        Some(agent_identity.thumbprint())
    );
    assert_eq!(
        client_side.peer_thumbprint.as_deref(),
        Some(server_identity.thumbprint())
    );
    assert_eq!(server_side.alpn.as_deref(), Some(ALPN_H2));
    assert_eq!(client_side.alpn.as_deref(), Some(ALPN_H2));
}

#[tokio::test]
async fn a_client_with_an_untrusted_certificate_is_refused_and_logged() {
    let log = CapturedLog::default();
    let _subscriber = log.install();
    let server_identity = identity("server");
    let trusted_agent = identity("trusted agent");
    let stranger = identity("stranger");
    let server = server_config(&server_identity, trusting(&[trusted_agent.thumbprint()])).unwrap();
    let client = client_config(&stranger, expecting(server_identity.thumbprint())).unwrap();

    let (server_side, client_side) = exchange(server, client).await;
    let error = server_side.unwrap_err();
    let untrusted = find_untrusted_peer(&error).expect("refused for its pin");
    assert_eq!(untrusted.peer, PeerRole::Client);
    assert_eq!(untrusted.thumbprint, stranger.thumbprint());
    assert!(error.to_string().contains(stranger.thumbprint()), "{error}");
    // TLS 1.3 clients finish first, so the stranger learns of it on its first read.
    let client_error = client_side.unwrap_err();
    assert!(find_untrusted_peer(&client_error).is_none());

    let log = log.text();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains(stranger.thumbprint()), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[tokio::test]
async fn a_server_with_an_unexpected_certificate_is_refused_by_the_client() {
    let impostor = identity("impostor");
    let real_server = identity("server");
    let agent = identity("agent");
    let server = server_config(&impostor, trusting(&[agent.thumbprint()])).unwrap();
    let client = client_config(&agent, expecting(real_server.thumbprint())).unwrap();

    let (server_side, client_side) = exchange(server, client).await;
    let error = client_side.unwrap_err();
    let untrusted = find_untrusted_peer(&error).expect("refused for its pin");
    assert_eq!(untrusted.peer, PeerRole::Server);
    assert_eq!(untrusted.thumbprint, impostor.thumbprint());
    assert!(server_side.is_err());
}

#[tokio::test]
async fn any_of_several_expected_server_thumbprints_is_accepted() {
    let server_identity = identity("server");
    let agent = identity("agent");
    let server = server_config(&server_identity, trusting(&[agent.thumbprint()])).unwrap();
    let rotating = vec![
        identity("old server").thumbprint().to_owned(),
        server_identity.thumbprint().to_ascii_lowercase(),
    ];
    let client = client_config(&agent, rotating).unwrap();

    let (server_side, client_side) = exchange(server, client).await;
    server_side.unwrap();
    client_side.unwrap();
}

#[tokio::test]
async fn trust_changes_at_runtime_apply_to_the_next_handshake() {
    let server_identity = identity("server");
    let agent = identity("agent");
    let trusted = trusting(&[]);
    let server = server_config(&server_identity, trusted.clone()).unwrap();
    let client = client_config(&agent, expecting(server_identity.thumbprint())).unwrap();

    let (server_side, _) = exchange(server.clone(), client.clone()).await;
    assert!(server_side.is_err());

    assert!(trusted.add(agent.thumbprint()).unwrap());
    let (server_side, client_side) = exchange(server.clone(), client.clone()).await;
    server_side.unwrap();
    client_side.unwrap();

    // No session resumption: a removed thumbprint is refused at once.
    assert!(trusted.remove(agent.thumbprint()));
    let (server_side, _) = exchange(server, client).await;
    assert!(find_untrusted_peer(&server_side.unwrap_err()).is_some());
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let server_identity = identity("server");
    let agent = identity("agent");
    let server = server_config(&server_identity, trusting(&[agent.thumbprint()])).unwrap();
    let mut client =
        (*client_config(&agent, expecting(server_identity.thumbprint())).unwrap()).clone();
    client.client_auth_cert_resolver = Arc::new(NoCertificate);

    let (server_side, client_side) = exchange(server, Arc::new(client)).await;
    assert!(server_side.is_err());
    assert!(client_side.is_err());
}

#[test]
fn client_configs_need_valid_expected_thumbprints() {
    let agent = identity("agent");
    assert!(matches!(
        client_config(&agent, Vec::new()),
        Err(PkiError::NoExpectedThumbprints)
    ));
    assert!(matches!(
        client_config(&agent, vec!["ABCD".to_owned()]),
        Err(PkiError::InvalidThumbprint { .. })
    ));
    let with_colons = agent
        .thumbprint()
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert!(client_config(&agent, vec![with_colons]).is_ok());
}

#[test]
fn thumbprint_sets_compare_canonical_forms() {
    let agent = identity("agent");
    let lower = agent.thumbprint().to_ascii_lowercase();
    let set = ThumbprintSet::new();
    assert!(set.is_empty());
    assert!(set.add(&lower).unwrap());
    assert!(!set.add(agent.thumbprint()).unwrap());
    assert!(set.contains(agent.thumbprint()));
    assert!(set.contains(&lower));
    assert_eq!(set.to_vec(), vec![agent.thumbprint().to_owned()]);
    assert!(matches!(
        set.add("nope"),
        Err(PkiError::InvalidThumbprint { .. })
    ));
    assert!(set.replace_all([agent.thumbprint(), "nope"]).is_err());
    assert_eq!(set.len(), 1, "a failed replacement changes nothing");
    assert!(!set.remove("nope"));
    assert!(set.remove(&lower));
    assert!(!set.contains(agent.thumbprint()));
}

/// A client certificate resolver that never has one, to act as a client without a certificate.
#[derive(Debug)]
struct NoCertificate;

impl cuttle_pki::rustls::client::ResolvesClientCert for NoCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[cuttle_pki::rustls::SignatureScheme],
    ) -> Option<Arc<cuttle_pki::rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Log lines written on this thread while installed (the tests' runtime has one thread).
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("an unpoisoned log").clone())
            .expect("UTF-8 log lines")
    }
}

impl io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("an unpoisoned log")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'writer> tracing_subscriber::fmt::MakeWriter<'writer> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'writer self) -> CapturedLog {
        self.clone()
    }
}
