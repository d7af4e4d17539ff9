//! Failures of the egress client mapped to `wasi:http` error codes, so the component sees why a
//! request failed (refused, timed out, TLS, protocol) without the host's internal error text.

use std::error::Error as StdError;
use std::io;

use wasmtime_wasi_http::Error;

use super::connector::ConnectError;

/// Map a client failure to a `wasi:http` error by walking its source chain (looking inside
/// `io::Error` wrappers too, which `source()` skips) for the connector's own error, a rustls
/// error, an I/O error or a hyper error.
pub(super) fn map_client_error(err: &hyper_util::client::legacy::Error) -> Error {
    let mapped = classify_chain(err).unwrap_or(if err.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::HttpProtocolError
    });
    tracing::debug!(error = %err, mapped = %mapped, "egress request failed");
    mapped
}

fn classify_chain(err: &(dyn StdError + 'static)) -> Option<Error> {
    let mut io_fallback = None;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return Some(connect.to_wasi_error());
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_error(tls));
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return Some(hyper_error(hyper));
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
            io_fallback.get_or_insert_with(|| io_error_code(io));
        }
        current = e.source();
    }
    io_fallback
}

fn tls_error(err: &rustls::Error) -> Error {
    match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Error::TlsCertificateError
        }
        rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

pub(super) fn hyper_error(err: &hyper::Error) -> Error {
    if err.is_timeout() {
        Error::HttpResponseTimeout
    } else if err.is_incomplete_message() {
        Error::HttpResponseIncomplete
    } else {
        Error::HttpProtocolError
    }
}

pub(super) fn io_error_code(err: &io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::TimedOut => Error::ConnectionTimeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            Error::ConnectionTerminated
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            Error::DestinationUnavailable
        }
        _ => Error::ConnectionRefused,
    }
}
