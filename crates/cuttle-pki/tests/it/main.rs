//! Integration tests of cuttle-pki: identities on disk and mutual TLS over loopback.

mod identity;
mod tls;
