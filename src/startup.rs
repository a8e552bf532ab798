//! Building and running the hub: one HTTPS listener serving the API,
//! the consoles, health and metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::LoginThrottle;
use crate::devices::identity::PeerCertificate;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::tls::{TlsError, TlsFiles};

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Live terminal links of this hub.
    pub devices: Arc<crate::devices::registry::Registry>,
    pub settings: Arc<Settings>,
    pub throttle: Arc<LoginThrottle>,
    pub started: Instant,
    /// Schedule changes, for live worklists and terminals.
    pub schedule: crate::schedule::notify::Notifier,
    /// The alarm engine: intake, routing, escalation, live feed.
    pub alerts: Arc<crate::alerts::engine::Engine>,
    /// The video relay.
    pub relay: crate::relay::Relay,
    /// Calls with media: signalling between consoles, terminals and the relay.
    pub calls: crate::calls::media::Board,
    /// TURN URLs and the secret of the credentials issued for them.
    pub turn: Arc<crate::relay::turn::IceConfig>,
}

/// The remote address of a connection, put on every request.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start the alarm engine: {0}")]
    Alerts(String),
    #[error("cannot start the video relay: {0}")]
    Relay(String),
    #[error(transparent)]
    Turn(#[from] crate::relay::turn::TurnError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A hub ready to serve: bound, migrated, with its TLS identity loaded.
pub struct Hub {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    device_listener: TcpListener,
    device_acceptor: TlsAcceptor,
    device_router: Router,
    state: AppState,
    tls: TlsFiles,
    turn: Option<crate::relay::turn::TurnServer>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Hub {
    pub async fn build(settings: Settings) -> Result<Hub, StartupError> {
        crate::telemetry::init_metrics();
        let store = Store::open(settings.database_url.as_deref(), &settings.data_dir).await?;
        Hub::build_with_store(settings, store).await
    }

    pub async fn build_with_store(settings: Settings, store: Store) -> Result<Hub, StartupError> {
        crate::telemetry::init_metrics();
        let configured = match (&settings.tls_cert, &settings.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let tls = crate::tls::ensure_files(configured, &settings.data_dir, settings.listen.ip())?;
        let acceptor = TlsAcceptor::from(Arc::new(crate::tls::server_config(&tls)?));
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let device_ca = crate::devices::identity::DeviceCa::load_or_create(&settings.data_dir)?;
        let device_acceptor = TlsAcceptor::from(Arc::new(
            crate::devices::identity::device_server_config(&tls, &device_ca.cert_pem)?,
        ));
        let device_listener =
            TcpListener::bind(settings.device_listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.device_listen,
                    source,
                })?;
        let devices = Arc::new(crate::devices::registry::Registry::default());
        let alerts =
            crate::alerts::engine::Engine::start(store.clone(), devices.clone(), &settings)
                .await
                .map_err(|e| StartupError::Alerts(e.to_string()))?;
        let relay = crate::relay::Relay::start(&crate::relay::RelaySettings {
            bind: settings.relay_listen,
            public_ip: settings
                .relay_public_ip
                .or_else(|| (!settings.listen.ip().is_unspecified()).then(|| settings.listen.ip())),
            shards: match settings.relay_shards {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
        })
        .map_err(|e| StartupError::Relay(e.to_string()))?;
        let (turn, ice) = crate::relay::turn::start(&settings, relay.addrs()).await?;
        let state = AppState {
            turn: Arc::new(ice),
            relay,
            calls: Default::default(),
            store,
            devices,
            alerts,
            throttle: Arc::new(LoginThrottle::new(
                settings.login_max_failures,
                Duration::from_secs(settings.login_window_secs),
                Duration::from_secs(settings.login_lockout_secs),
            )),
            settings: Arc::new(settings),
            started: Instant::now(),
            schedule: Default::default(),
        };
        crate::calls::media::spawn_relay_events(state.clone());
        let router = app(state.clone());
        let device_router = device_app(state.clone());
        Ok(Hub {
            listener,
            acceptor,
            router,
            device_listener,
            device_acceptor,
            device_router,
            state,
            tls,
            turn,
        })
    }

    /// Address of the embedded TURN server, when it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn.as_ref().map(|t| t.addr())
    }

    /// Address of the terminal link listener.
    pub fn device_addr(&self) -> SocketAddr {
        self.device_listener
            .local_addr()
            .unwrap_or(self.state.settings.device_listen)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.settings.listen)
    }

    pub fn tls_files(&self) -> &TlsFiles {
        &self.tls
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets open requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Hub {
            listener,
            acceptor,
            router,
            device_listener,
            device_acceptor,
            device_router,
            state,
            turn,
            ..
        } = self;
        tracing::info!(
            addr = %listener.local_addr()?,
            device_addr = %device_listener.local_addr()?,
            store = state.store.kind(),
            "hub listening"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_tls(listener, acceptor, router, stop_rx.clone()));
        tasks.spawn(serve_tls(
            device_listener,
            device_acceptor,
            device_router,
            stop_rx,
        ));
        let mut housekeeping = JoinSet::new();
        housekeeping.spawn(purge_sessions(state.store.clone()));
        housekeeping.spawn(crate::devices::watch_revocations(
            state.store.clone(),
            state.devices.clone(),
            Duration::from_secs(2),
        ));
        housekeeping.spawn(crate::devices::persist_presence(
            state.store.clone(),
            state.devices.clone(),
            Duration::from_secs(60),
        ));
        housekeeping.spawn(crate::alerts::engine::run(
            state.alerts.clone(),
            Duration::from_secs(state.settings.supervision_check_secs),
        ));
        housekeeping.spawn(crate::schedule::ticker::run(
            state.store.clone(),
            state.schedule.clone(),
            state.settings.clone(),
        ));
        housekeeping.spawn(crate::schedule::notify::push_schedules(
            state.store.clone(),
            state.devices.clone(),
            state.schedule.clone(),
        ));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        housekeeping.shutdown().await;
        if let Some(turn) = turn {
            turn.close().await;
        }
        let _ = state
            .store
            .record_last_seen(&state.devices.last_seen_all())
            .await;
        state.store.close().await;
        Ok(())
    }
}

/// Accepts TLS connections and serves `router` on them until `stop` turns true,
/// then lets open connections finish for a grace period.
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small frames (alerts to patrol phones, acknowledgements to
                // terminals) go out at once rather than wait for the peer's ACK.
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            metrics::counter!("etahoiva_tls_handshake_failures_total").increment(1);
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let peer_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|c| PeerCertificate(Arc::new(c.clone().into_owned())));
                    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(PeerAddr(peer));
                        if let Some(cert) = &peer_cert {
                            request.extensions_mut().insert(cert.clone());
                        }
                        router.clone().oneshot(request)
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time");
    }
    connections.shutdown().await;
}

/// The router of the terminal link listener.
pub fn device_app(state: AppState) -> Router {
    Router::new()
        .route(
            etahoiva_proto::LINK_PATH,
            axum::routing::get(crate::devices::link::link),
        )
        .with_state(state)
}

async fn purge_sessions(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match store.purge_sessions(crate::store::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
        }
    }
}

/// The whole router: API, consoles, health and metrics, with the common layers.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    Router::new()
        .merge(crate::api::router())
        .merge(crate::web::router())
        .fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map(|p| p.as_str())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn fallback(request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        crate::api::ApiError::NotFound("route").into_response()
    } else {
        let lang = crate::i18n::Lang::negotiate(None, request.headers());
        let mut response = crate::web::not_found(lang);
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    }
}
