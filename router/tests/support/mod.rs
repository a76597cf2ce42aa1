//! Test support for the router's federation tests.

#![allow(dead_code)]

pub mod canned;
pub mod corpus;
pub mod fixture;

/// A port nothing listens on, for a subgraph that is down: bound (so no server of the test can
/// be given it while this lives) but not listening, so connections to it are refused at once.
pub struct ClosedPort {
    pub url: String,
    _reserved: tokio::net::TcpSocket,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let url = format!("http://{}/graphql", socket.local_addr().expect("addr"));
    ClosedPort { url, _reserved: socket }
}
