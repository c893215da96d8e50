//! Integration tests of cuttle-agent: a real agent (router, executor, file store) reached over
//! real TLS on loopback, in listening and in polling mode, by a test playing the server with
//! `AgentConnection`.

/// Runs the async function `$test(mode)` once per mode, as `$test::listening` and
/// `$test::polling`.
macro_rules! in_both_modes {
    ($test:ident) => {
        mod $test {
            use super::*;

            #[tokio::test]
            async fn listening() {
                super::$test(Mode::Listening).await;
            }

            #[tokio::test]
            async fn polling() {
                super::$test(Mode::Polling).await;
            }
        }
    };
}

mod connections;
mod files;
mod helpers;
mod packages;
mod polling;
mod refusals;
mod registration;
mod restart;
mod scripts;
